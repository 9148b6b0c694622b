#!/bin/sh
# Regenerates vectors.txt: tokens signed by the openssl CLI rather than by our code, one per line
# as `<ALG> <verification key> <token>`, so the tests cross-check the verifier against an
# independent signer. The verification key is a PEM file here, or `secret:<text>` for HMAC.
# Run from this directory; the keys were made once with `openssl genrsa` / `openssl genpkey`.
set -eu
b64url() { basenc --base64url -w0 | tr -d '='; }

# ECDSA DER signature on stdin -> raw R||S, each scalar left-padded to $1 bytes (JWS form).
der_to_raw() {
  openssl asn1parse -inform DER | awk -F: '/INTEGER/ {print $NF}' | while read -r h; do
    printf "%$(($1 * 2))s" "$h" | tr ' ' 0
  done | xxd -r -p
}

hs256() { openssl dgst -sha256 -mac HMAC -macopt key:openssl-vector-secret -binary; }
rs256() { openssl dgst -sha256 -sign rsa2048_pkcs1.pem; }
rs512() { openssl dgst -sha512 -sign rsa1024_pkcs1.pem; }
rs256_1024() { openssl dgst -sha256 -sign rsa1024_pkcs1.pem; }
ps384() { openssl dgst -sha384 -sign rsa2048_pkcs8.pem -sigopt rsa_padding_mode:pss -sigopt rsa_pss_saltlen:48; }
es256() { openssl dgst -sha256 -sign p256_pkcs8.pem | der_to_raw 32; }
es384() { openssl dgst -sha384 -sign p384_pkcs8.pem | der_to_raw 48; }
es512() { openssl dgst -sha512 -sign p521_pkcs8.pem | der_to_raw 66; }
eddsa() {
  f=$(mktemp); cat > "$f"
  openssl pkeyutl -sign -rawin -inkey ed25519_pkcs8.pem -in "$f"; rm -f "$f"
}

payload=$(printf '{"key":"user-key","iss":"user-key","exp":4102444800}' | b64url)
sign() { # alg, verification key, signer function
  header=$(printf '{"alg":"%s","typ":"JWT"}' "$1" | b64url)
  sig=$(printf '%s' "$header.$payload" | $3 | b64url)
  echo "$1 $2 $header.$payload.$sig"
}

{
  sign HS256 secret:openssl-vector-secret hs256
  sign RS256 rsa2048_spki.pub.pem rs256
  sign RS512 rsa1024_spki.pub.pem rs512
  sign RS256 rsa1024_spki.pub.pem rs256_1024
  sign PS384 rsa2048_pkcs1.pub.pem ps384
  sign ES256 p256_spki.pub.pem es256
  sign ES384 p384_spki.pub.pem es384
  sign ES512 p521_spki.pub.pem es512
  sign EdDSA ed25519_spki.pub.pem eddsa
} > vectors.txt
