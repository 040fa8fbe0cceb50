# Sourced by the serving benchmarks: the query they post, a real photo from a package resized to
# about one megapixel, and the wrk script that posts it.
#
#   bench_query WORK_DIR      # sets QUERY (WORK_DIR/query-1mp.jpg) and writes WORK_DIR/post.lua
# Needs ROOT (the repository) and PY (the venv's python).
bench_query() {
    QUERY="$1/query-1mp.jpg"
    if [ ! -f "$QUERY" ]; then
        "$PY" - "$ROOT/.data/photos/lomiri-bridge.jpg" "$QUERY" <<'PYEOF'
import sys
from PIL import Image
with Image.open(sys.argv[1]) as image:
    image.convert("RGB").resize((1155, 866), Image.Resampling.LANCZOS).save(sys.argv[2], quality=90)
PYEOF
    fi
    cat > "$1/post.lua" <<LUAEOF
local file = io.open("$QUERY", "rb")
wrk.method = "POST"
wrk.body = file:read("*a")
file:close()
wrk.headers["Content-Type"] = "image/jpeg"
LUAEOF
}
