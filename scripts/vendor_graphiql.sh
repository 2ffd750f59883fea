#!/usr/bin/env bash
# Vendor GraphiQL (and what its page needs) from npm into kabinet/static/graphiql/,
# so that GET /graphql works with no internet access: nothing is loaded from a CDN.
#
# Usage: scripts/vendor_graphiql.sh        (needs node + npm and access to the npm registry)
#
# Only prebuilt browser (UMD) files are copied; nothing is bundled here. Re-running the
# script replaces kabinet/static/graphiql/ with exactly the files listed below.
# kabinet/static/graphiql.html loads these files from /static/graphiql/...; the page's own files
# (sign-in bar, fetcher, styles, default tab) live in kabinet/static/graphiql-page/, which this
# script never touches (docs/graphiql.md).
set -euo pipefail

# Pinned versions. graphiql 3.8.3 ships a self-contained UMD bundle (it includes graphql-js 16.9.0,
# @graphiql/react 0.28 and @graphiql/toolkit); @graphiql/plugin-explorer 3.2.5 is the release made
# for @graphiql/react ^0.28 and reads React, GraphiQL.React and GraphiQL.GraphQL from globals.
# graphql is pinned to the version the graphiql bundle embeds (only needed to satisfy peers).
# graphql-ws 6.x ships umd/graphql-ws.min.js (global `graphqlWs`): the page uses it for
# subscriptions over the graphql-transport-ws protocol.
PACKAGES=(
  react@18.2.0
  react-dom@18.2.0
  graphiql@3.8.3
  @graphiql/plugin-explorer@3.2.5
  graphql@16.9.0
  graphql-ws@6.4.2
)

# package-relative source path -> file name under kabinet/static/graphiql/
FILES=(
  "react/umd/react.production.min.js:react.production.min.js"
  "react-dom/umd/react-dom.production.min.js:react-dom.production.min.js"
  "graphiql/graphiql.min.js:graphiql.min.js"
  "graphiql/graphiql.min.css:graphiql.min.css"
  "@graphiql/plugin-explorer/dist/index.umd.js:plugin-explorer.umd.js"
  "@graphiql/plugin-explorer/dist/style.css:plugin-explorer.css"
  "graphql-ws/umd/graphql-ws.min.js:graphql-ws.min.js"
)

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
DEST="$ROOT/kabinet/static/graphiql"

command -v npm >/dev/null || { echo "npm is required" >&2; exit 1; }

WORK="$(mktemp -d)"
trap 'rm -rf "$WORK"' EXIT

cd "$WORK"
printf '{"name":"kabinet-graphiql-vendor","version":"0.0.0","private":true}\n' > package.json
# --legacy-peer-deps: graphiql-explorer (inside the explorer plugin) still declares React 16 peers;
# the plugin's UMD build is prebuilt and works with React 18, so the peer check is only noise here.
npm install --no-audit --no-fund --ignore-scripts --save-exact --legacy-peer-deps \
  --loglevel=error "${PACKAGES[@]}"

NM="$WORK/node_modules"
STAGE="$WORK/out"
mkdir -p "$STAGE/licenses"

for entry in "${FILES[@]}"; do
  src="${entry%%:*}"
  dst="${entry#*:}"
  [[ -f "$NM/$src" ]] || { echo "missing in npm package: $src" >&2; exit 1; }
  cp "$NM/$src" "$STAGE/$dst"
done

# Sanity checks: the files must not pull anything from a CDN at runtime.
if grep -lE 'unpkg\.com|cdn\.jsdelivr|cdnjs\.cloudflare' "$STAGE"/*.js "$STAGE"/*.css; then
  echo "a vendored file references a CDN" >&2
  exit 1
fi

{
  echo "# GraphiQL assets vendored from npm by scripts/vendor_graphiql.sh"
  echo "# Do not edit by hand: re-run the script."
  echo "#"
  echo "# package@version  license"
} > "$STAGE/VERSIONS.txt"

for spec in "${PACKAGES[@]}"; do
  name="${spec%@*}"
  pj="$NM/$name/package.json"
  version="$(node -p "require(process.argv[1]).version" "$pj")"
  license="$(node -p "const p=require(process.argv[1]); p.license || (p.licenses||[]).map(l=>l.type).join(' OR ') || 'UNKNOWN'" "$pj")"
  wanted="${spec##*@}"
  [[ "$version" == "$wanted" ]] || { echo "$name: installed $version, wanted $wanted" >&2; exit 1; }
  echo "$name@$version  $license" >> "$STAGE/VERSIONS.txt"
  # Keep each package's license text next to its files (MIT asks for the notice to travel along).
  lic="$(find "$NM/$name" -maxdepth 1 -type f -iname 'licen[cs]e*' | head -n 1)"
  if [[ -n "$lic" ]]; then
    cp "$lic" "$STAGE/licenses/$(echo "$name" | tr '/@' '_-' | sed 's/^-//').LICENSE"
  fi
done

# graphql is only a peer for npm; it is not copied (graphiql.min.js embeds graphql-js 16.9.0).
{
  echo "#"
  echo "# graphql is installed only to satisfy peer dependencies; graphiql.min.js embeds its own copy."
  echo "#"
  echo "# file  <-  npm source"
  for entry in "${FILES[@]}"; do echo "${entry#*:}  <-  ${entry%%:*}"; done
  echo "#"
  echo "# sha256"
  (cd "$STAGE" && sha256sum -- *.js *.css)
} >> "$STAGE/VERSIONS.txt"

rm -rf "$DEST"
mkdir -p "$(dirname "$DEST")"
cp -r "$STAGE" "$DEST"

echo "Vendored into $DEST:"
(cd "$DEST" && du -ah . | sort -k2)
