"""The console's front-end libraries come from npm and are served as static files, only the files it loads."""

from pathlib import Path

from django.contrib.staticfiles import finders

from core.staticfiles import NpmFinder


def test_echarts_from_npm_is_found_as_a_static_file():
    found = finders.find("echarts/echarts.min.js")

    assert found and b"echarts" in Path(found).read_bytes()[:20000]
    assert Path(found).is_relative_to(Path(__file__).resolve().parents[2] / "node_modules")


def test_only_the_named_files_of_an_npm_package_are_collected():
    collected = [(storage.prefix, path) for path, storage in NpmFinder().list(ignore_patterns=[])]

    assert collected == [("echarts", "echarts.min.js")]


def test_a_missing_npm_install_is_a_system_check_error_saying_what_to_run(settings, tmp_path):
    settings.NODE_MODULES_DIR = tmp_path

    (error,) = NpmFinder().check()

    assert "make install" in error.hint
