#!/usr/bin/env bash
# Makes TLS material for local use of s3gw: a local CA and a server certificate whose SANs
# cover localhost, 127.0.0.1, ::1 and every domain given, each with its wildcard (*.domain) so
# virtual-hosted-style requests (https://bucket.domain/key) verify.
#
#   certs/make-local-certs.sh [--out DIR] [--days N] [domain ...]
#
# Writes into DIR (default certs/out/, git-ignored):
#   ca.pem, ca-key.pem          the local CA (kept across runs so clients keep trusting it)
#   server.pem, server-key.pem  the server certificate and key, for tls.cert / tls.key
# Keys are created 0600. Never use this CA in production: see certs/README.md.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
out="$here/out"
days=825
domains=()
while [[ $# -gt 0 ]]; do
  case "$1" in
    --out) out="$2"; shift 2 ;;
    --days) days="$2"; shift 2 ;;
    -h|--help) sed -n '2,12p' "$0"; exit 0 ;;
    -*) echo "make-local-certs: unknown option $1" >&2; exit 2 ;;
    *)
      # A DNS name: letters, digits, dots and hyphens (what goes into a SAN).
      if [[ ! "$1" =~ ^[A-Za-z0-9]([A-Za-z0-9.-]*[A-Za-z0-9])?$ ]]; then
        echo "make-local-certs: $1 is not a DNS name" >&2; exit 2
      fi
      domains+=("${1,,}"); shift ;;
  esac
done

command -v openssl >/dev/null || { echo "make-local-certs: openssl not found" >&2; exit 2; }
mkdir -p "$out"
umask 077

if [[ ! -s "$out/ca.pem" || ! -s "$out/ca-key.pem" ]]; then
  openssl req -x509 -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes \
    -keyout "$out/ca-key.pem" -out "$out/ca.pem" -days 3650 \
    -subj "/CN=s3gw local CA $(hostname -s 2>/dev/null || echo host)" \
    -addext "basicConstraints=critical,CA:TRUE,pathlen:0" \
    -addext "keyUsage=critical,keyCertSign,cRLSign" 2>/dev/null
  echo "created local CA $out/ca.pem"
fi

san="DNS:localhost,IP:127.0.0.1,IP:::1"
for d in "${domains[@]}"; do san="$san,DNS:$d,DNS:*.$d"; done

ext="$(mktemp)"
csr="$(mktemp)"
trap 'rm -f "$ext" "$csr"' EXIT
cat >"$ext" <<CONF
basicConstraints=critical,CA:FALSE
keyUsage=critical,digitalSignature,keyEncipherment
extendedKeyUsage=serverAuth
subjectAltName=$san
CONF

openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes \
  -keyout "$out/server-key.pem" -out "$csr" -subj "/CN=${domains[0]:-localhost}" 2>/dev/null
openssl x509 -req -in "$csr" -CA "$out/ca.pem" -CAkey "$out/ca-key.pem" -CAcreateserial \
  -out "$out/server.pem" -days "$days" -extfile "$ext" 2>/dev/null
chmod 600 "$out/server-key.pem" "$out/ca-key.pem"
chmod 644 "$out/server.pem" "$out/ca.pem"
echo "created $out/server.pem ($san)"
