"""Front-end libraries from npm (package.json, installed by `make install` into node_modules/), served as static
files: only the built files the console loads, named here, not the whole package (echarts' dist/ alone is 51 MB).

``STATIC_URL + "echarts/echarts.min.js"`` is node_modules/echarts/dist/echarts.min.js.
"""

from pathlib import Path

from django.conf import settings
from django.contrib.staticfiles.finders import BaseFinder
from django.core.checks import Error
from django.core.files.storage import FileSystemStorage

# static path → file under node_modules/
NPM_FILES = {
    "echarts/echarts.min.js": "echarts/dist/echarts.min.js",
}


def _node_modules() -> Path:
    return Path(getattr(settings, "NODE_MODULES_DIR", settings.BASE_DIR / "node_modules"))


class NpmFinder(BaseFinder):
    def check(self, **kwargs):
        missing = [name for name in NPM_FILES.values() if not (_node_modules() / name).is_file()]
        if missing:
            return [
                Error(
                    f"node_modules lacks {', '.join(missing)}",
                    hint="Run `make install` (npm ci) to install the console's front-end libraries.",
                    id="core.E001",
                )
            ]
        return []

    def find(self, path, find_all=False, **kwargs):
        find_all = find_all or kwargs.get("all", False)
        name = NPM_FILES.get(path)
        if name is None or not (_node_modules() / name).is_file():
            return [] if find_all else None
        found = str(_node_modules() / name)
        return [found] if find_all else found

    def list(self, ignore_patterns):
        for path, name in NPM_FILES.items():
            source = _node_modules() / name
            if not source.is_file():
                continue
            storage = FileSystemStorage(location=str(source.parent))
            storage.prefix = str(Path(path).parent)
            yield source.name, storage
