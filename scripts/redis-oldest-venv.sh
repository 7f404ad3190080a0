#!/usr/bin/env bash
# A small second venv for `make test-redis-oldest`: only redis-py at the oldest version jobqueue supports,
# in front of the project venv's packages (a .pth runs site.addsitedir on them, after its own), so the
# core tests run on that redis-py without a second copy of every other dependency.
# Usage: scripts/redis-oldest-venv.sh PROJECT_VENV OLDEST_VENV REDIS_VERSION
set -euo pipefail
project_venv=$1 oldest_venv=$2 version=$3
python=${PYTHON:-python3}
test -x "$oldest_venv/bin/python" || "$python" -m venv "$oldest_venv"
project_site=$("$project_venv/bin/python" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')
oldest_site=$("$oldest_venv/bin/python" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')
echo "import site; site.addsitedir('$project_site')" > "$oldest_site/zz_jobqueue_project_venv.pth"
installed=$("$oldest_venv/bin/python" -c 'import redis; print(redis.__version__)' 2>/dev/null || true)
if [ "$installed" != "$version" ] || [ ! -d "$oldest_site/redis" ]; then
    "$oldest_venv/bin/python" -m pip install -q --no-deps "redis==$version"
fi
# Refuse to report a pass on any other redis-py than the one asked for.
"$oldest_venv/bin/python" -c "
import redis, sys
where = redis.__file__
assert redis.__version__ == '$version' and where.startswith('$oldest_site'), (redis.__version__, where)
print('redis-py', redis.__version__, 'from', where)
"
