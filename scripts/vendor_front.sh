#!/usr/bin/env bash
# Vendor the front page's libraries (GET /) from npm into kabinet/static/front/vendor/, so the page
# loads nothing from a CDN and needs no build step at run time (docs/front-page.md).
#
# Usage: scripts/vendor_front.sh        (needs node + npm and access to the npm registry)
#
# Only prebuilt browser files are copied, nothing is bundled here. Re-running the script replaces
# kabinet/static/front/vendor/ with exactly the files listed below (and their licenses).
set -euo pipefail

# Pinned versions.
#  htm 3.1.1 ships preact/standalone.module.js: Preact, its hooks and htm (JSX-like tagged templates)
#  in one ES module with no imports — the page's own modules import it by relative path.
#  graphql-ws 6.4.2 ships umd/graphql-ws.min.js (global `graphqlWs`): the graphql-transport-ws client,
#  the same file GraphiQL's page uses (scripts/vendor_graphiql.sh).
PACKAGES=(
  htm@3.1.1
  graphql-ws@6.4.2
)

# package-relative source path -> file name under kabinet/static/front/vendor/
FILES=(
  "htm/preact/standalone.module.js:preact-htm.module.js"
  "graphql-ws/umd/graphql-ws.min.js:graphql-ws.min.js"
)

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
DEST="$ROOT/kabinet/static/front/vendor"

command -v npm >/dev/null || { echo "npm is required" >&2; exit 1; }

WORK="$(mktemp -d)"
trap 'rm -rf "$WORK"' EXIT

cd "$WORK"
printf '{"name":"kabinet-front-vendor","version":"0.0.0","private":true}\n' > package.json
npm install --no-audit --no-fund --ignore-scripts --save-exact --loglevel=error "${PACKAGES[@]}"

NM="$WORK/node_modules"
STAGE="$WORK/out"
mkdir -p "$STAGE/licenses"

for entry in "${FILES[@]}"; do
  src="${entry%%:*}"
  dst="${entry#*:}"
  [[ -f "$NM/$src" ]] || { echo "missing in npm package: $src" >&2; exit 1; }
  cp "$NM/$src" "$STAGE/$dst"
done

# The files must not pull anything from a CDN, and the ES module must import nothing (no bare
# specifiers a browser could not resolve without an import map, which would need an inline script).
if grep -lE 'unpkg\.com|cdn\.jsdelivr|cdnjs\.cloudflare|esm\.sh' "$STAGE"/*.js; then
  echo "a vendored file references a CDN" >&2
  exit 1
fi
if grep -qE '(^|[;}])import[ {*]' "$STAGE/preact-htm.module.js"; then
  echo "preact-htm.module.js imports another module" >&2
  exit 1
fi

{
  echo "# Front page libraries vendored from npm by scripts/vendor_front.sh"
  echo "# Do not edit by hand: re-run the script."
  echo "#"
  echo "# package@version  license"
} > "$STAGE/VERSIONS.txt"

for spec in "${PACKAGES[@]}"; do
  name="${spec%@*}"
  pj="$NM/$name/package.json"
  version="$(node -p "require(process.argv[1]).version" "$pj")"
  license="$(node -p "const p=require(process.argv[1]); p.license || 'UNKNOWN'" "$pj")"
  wanted="${spec##*@}"
  [[ "$version" == "$wanted" ]] || { echo "$name: installed $version, wanted $wanted" >&2; exit 1; }
  echo "$name@$version  $license" >> "$STAGE/VERSIONS.txt"
  lic="$(find "$NM/$name" -maxdepth 1 -type f -iname 'licen[cs]e*' | head -n 1)"
  if [[ -n "$lic" ]]; then
    cp "$lic" "$STAGE/licenses/$(echo "$name" | tr '/@' '_-' | sed 's/^-//').LICENSE"
  fi
done

{
  echo "#"
  echo "# preact-htm.module.js embeds Preact (MIT, https://preactjs.com) as built by htm's release."
  echo "#"
  echo "# file  <-  npm source"
  for entry in "${FILES[@]}"; do echo "${entry#*:}  <-  ${entry%%:*}"; done
  echo "#"
  echo "# sha256"
  (cd "$STAGE" && sha256sum -- *.js)
} >> "$STAGE/VERSIONS.txt"

rm -rf "$DEST"
mkdir -p "$(dirname "$DEST")"
cp -r "$STAGE" "$DEST"

echo "Vendored into $DEST:"
(cd "$DEST" && du -ah . | sort -k2)
