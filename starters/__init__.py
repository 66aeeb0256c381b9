"""How backend systems start and talk to negotiations: the `fitnest` command and client functions."""
