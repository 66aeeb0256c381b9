#!/bin/sh
# Creates or upgrades Temporal's two PostgreSQL databases (the store and visibility); the
# temporal-schema service of docker-compose.yml runs it before the server starts.
#   POSTGRES_SEEDS, DB_PORT, POSTGRES_USER, SQL_PASSWORD  where PostgreSQL is, and who we are
# Safe to run again: an existing database is kept and only new schema versions are applied,
# which is also how a Temporal upgrade brings the schema forward.
set -eu

schema_root=/etc/temporal/schema/postgresql/v12
sql() {
  temporal-sql-tool --plugin postgres12 --ep "$POSTGRES_SEEDS" -p "${DB_PORT:-5432}" \
    -u "$POSTGRES_USER" "$@"
}

tries=0
until nc -z "$POSTGRES_SEEDS" "${DB_PORT:-5432}"; do
  tries=$((tries + 1))
  if [ "$tries" -ge 60 ]; then
    echo "error: PostgreSQL at $POSTGRES_SEEDS:${DB_PORT:-5432} does not answer" >&2
    exit 1
  fi
  sleep 2
done

for db in temporal:temporal temporal_visibility:visibility; do
  name="${db%%:*}"
  dir="${db#*:}"
  # `create` fails when the database exists; that is the normal case after the first start.
  sql --db "$name" create 2>/dev/null || echo "database $name exists"
  sql --db "$name" setup-schema -v 0.0
  sql --db "$name" update-schema -d "$schema_root/$dir/versioned"
done
echo "schema ready"
