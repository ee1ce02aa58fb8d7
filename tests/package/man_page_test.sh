#!/usr/bin/env bash
# The man page documents exactly the options the binary's --help gives (main app and leaks).
# usage: man_page_test.sh TCPTRAIL_BINARY MAN_PAGE_SOURCE
set -euo pipefail
binary=$1 page=$2

# --help lists an option as "  -p,--pid TYPE..." or "  --json   text"; keep the names.
help_options() {
  grep -oE '^  (-[a-z0-9],)?--[a-z0-9-]+' | tr -d ' ' | tr ',' '\n'
}
from_help=$({ "$binary" --help; "$binary" leaks --help; } | help_options | sort -u)
# In the OPTIONS section an option is a .B/.BR/.BI line; troff writes "-" as "\-".
from_man=$(sed -n '/^\.SH OPTIONS/,/^\.SH /p' "$page" | grep -E '^\.B[IR]? ' |
  sed 's/\\-/-/g' | grep -oE '(^|[ "])--?[a-z0-9][a-z0-9-]*' | tr -d ' "' | sort -u)

if [[ -z $from_help ]]; then
  echo "man_page_test: no options found in $binary --help" >&2
  exit 1
fi
if [[ $from_help != "$from_man" ]]; then
  echo "man_page_test: $page and --help differ (< only in --help, > only in the man page):" >&2
  diff <(echo "$from_help") <(echo "$from_man") >&2 || true
  exit 1
fi
echo "man_page_test: $(wc -l <<<"$from_help") options, the same in --help and $page"
