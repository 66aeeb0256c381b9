#!/bin/sh
# Prepares a Temporal namespace for Fitnest: creates it when FITNEST_NAMESPACE_RETENTION is set
# and it does not exist, then registers Fitnest's custom search attributes. The
# temporal-setup service of docker-compose.yml runs it once the cluster is healthy.
#   FITNEST_SEARCH_ATTRIBUTES     "Name=Type Name=Type ..." (types as the temporal CLI spells them)
#   FITNEST_NAMESPACE             namespace (default: default)
#   FITNEST_NAMESPACE_RETENTION   how long closed workflows stay visible, e.g. 720h (optional)
#   TEMPORAL_ADDRESS              frontend host:port, read by the temporal CLI
# Safe to run again: an attribute registered with the same type is left alone. One registered
# with another type is an error, because Temporal cannot change the type of an attribute.
set -eu

namespace="${FITNEST_NAMESPACE:-default}"
: "${FITNEST_SEARCH_ATTRIBUTES:?set FITNEST_SEARCH_ATTRIBUTES to Name=Type pairs}"

if [ -n "${FITNEST_NAMESPACE_RETENTION:-}" ] \
  && ! temporal operator namespace describe --namespace "$namespace" >/dev/null 2>&1; then
  temporal operator namespace create --namespace "$namespace" \
    --retention "$FITNEST_NAMESPACE_RETENTION"
  echo "created namespace $namespace (retention $FITNEST_NAMESPACE_RETENTION)"
fi

# Listing goes through the frontend's namespace cache, as creating does: wait until it works.
tries=0
until temporal operator search-attribute list --namespace "$namespace" >/dev/null 2>&1; do
  tries=$((tries + 1))
  if [ "$tries" -ge 60 ]; then
    echo "error: namespace $namespace not found at ${TEMPORAL_ADDRESS:-localhost:7233}" >&2
    exit 1
  fi
  sleep 2
done

for pair in $FITNEST_SEARCH_ATTRIBUTES; do
  name="${pair%%=*}"
  type="${pair#*=}"
  current="$(temporal operator search-attribute list --namespace "$namespace" \
    | awk -v name="$name" '$1 == name { print $2 }')"
  if [ -z "$current" ]; then
    temporal operator search-attribute create --namespace "$namespace" --name "$name" --type "$type"
    echo "registered $name ($type)"
  elif [ "$current" = "$type" ]; then
    echo "already registered: $name ($type)"
  else
    echo "error: $name is registered as $current, not $type; Temporal cannot change it" >&2
    exit 1
  fi
done
