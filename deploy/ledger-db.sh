#!/bin/sh
# Creates the sent-notification ledger's own user and database in the cluster's PostgreSQL (the
# one Temporal uses), or sets the user's password again; the ledger-db service of
# docker-compose.yml runs it before the workers start. The workers make their tables themselves.
#   PGHOST, PGPORT, PGUSER, PGPASSWORD    the server and an administrator (libpq's variables)
#   LEDGER_DB_USER, LEDGER_DB_PASSWORD    the ledger's user (its database has the same name)
# Safe to run again: what exists is kept.
set -eu

: "${LEDGER_DB_USER:?set LEDGER_DB_USER}" "${LEDGER_DB_PASSWORD:?set LEDGER_DB_PASSWORD}"

tries=0
until pg_isready -q -d postgres; do
  tries=$((tries + 1))
  if [ "$tries" -ge 60 ]; then
    echo "error: PostgreSQL at ${PGHOST:-localhost}:${PGPORT:-5432} does not answer" >&2
    exit 1
  fi
  sleep 2
done

# psql variables are quoted by psql itself (:'name' as a literal, :"name" as an identifier).
psql -v ON_ERROR_STOP=1 -q -d postgres \
  -v user="$LEDGER_DB_USER" -v password="$LEDGER_DB_PASSWORD" <<'SQL'
SELECT format('CREATE ROLE %I LOGIN', :'user')
  WHERE NOT EXISTS (SELECT FROM pg_roles WHERE rolname = :'user') \gexec
ALTER ROLE :"user" WITH LOGIN PASSWORD :'password';
SELECT format('CREATE DATABASE %I OWNER %I', :'user', :'user')
  WHERE NOT EXISTS (SELECT FROM pg_database WHERE datname = :'user') \gexec
REVOKE ALL ON DATABASE :"user" FROM PUBLIC;
SQL
echo "ledger database ${LEDGER_DB_USER} ready"
