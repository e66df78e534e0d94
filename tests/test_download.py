"""The downloader and the Unsplash TSV source, against a local HTTP server on 127.0.0.1 only."""

import json
import time

import pytest

from colorize_cli.prep.download import DownloadOptions, download_files, fetch
from colorize_cli.prep.photo import PhotoOptions
from colorize_cli.prep.pipeline import PrepOptions, prep_dataset
from colorize_cli.prep.sources import SourceTally, read_unsplash_rows, sized_url
from tests.prep_helpers import jpeg_bytes, local_server, make_photo

FAST = DownloadOptions(workers=4, retries=2, backoff_s=0.01, max_bytes=50_000, timeout_s=5)
PHOTOS = {f"/photo/{i}": jpeg_bytes(make_photo(i)) for i in range(6)}


def routes(path, nth):
    """Photos; /slow/N is photo N after a pause; /flaky fails with 500 once; /gone is 404; /huge is over the cap,
    declared or not."""
    if path in PHOTOS:
        return 200, PHOTOS[path], True
    if path.startswith("/slow/"):
        return 200, _after_a_pause(PHOTOS[path.replace("/slow", "/photo")]), False
    if path == "/flaky":
        return (500, b"busy", True) if nth == 1 else (200, PHOTOS["/photo/0"], True)
    if path == "/huge":
        return 200, b"x" * 60_000, True
    if path == "/huge-undeclared":
        return 200, b"x" * 60_000, False
    return 404, b"no", True


def _after_a_pause(body):
    time.sleep(0.3)  # the headers are out: every client of a test has opened its temp file by now
    yield body


def test_fetch_retries_after_a_500_and_never_retries_a_404(tmp_path):
    with local_server(routes) as server:
        assert fetch(f"{server.base}/flaky", tmp_path / "a.jpg", FAST) == "downloaded"
        assert fetch(f"{server.base}/gone", tmp_path / "b.jpg", FAST) == "http_404"
        assert server.requests["/flaky"] == 2
        assert server.requests["/gone"] == 1
    assert (tmp_path / "a.jpg").read_bytes() == PHOTOS["/photo/0"]
    assert not (tmp_path / "b.jpg").exists()


def test_fetch_gives_up_after_the_retries(tmp_path):
    with local_server(lambda path, nth: (503, b"down", True)) as server:
        assert fetch(f"{server.base}/photo/1", tmp_path / "a.jpg", FAST) == "http_503"
        assert server.requests["/photo/1"] == FAST.retries + 1


@pytest.mark.parametrize("path", ["/huge", "/huge-undeclared"])
def test_size_limit_leaves_no_file(tmp_path, path):
    with local_server(routes) as server:
        assert fetch(f"{server.base}{path}", tmp_path / "h.jpg", FAST) == "too_large"
    assert list(tmp_path.iterdir()) == []  # no file, no .part


def test_download_files_keeps_job_order_and_resumes(tmp_path):
    with local_server(routes) as server:
        jobs = [(f"{server.base}{path}", tmp_path / f"{i}.jpg") for i, path in enumerate(PHOTOS)]
        jobs.append((f"{server.base}/gone", tmp_path / "gone.jpg"))
        assert download_files(jobs, FAST) == ["downloaded"] * len(PHOTOS) + ["http_404"]
        first = sum(server.requests.values())
        # The rerun fetches only what is missing: the 404 again, nothing else.
        assert download_files(jobs, FAST) == ["present"] * len(PHOTOS) + ["http_404"]
        assert sum(server.requests.values()) == first + 1
    assert (tmp_path / "3.jpg").read_bytes() == PHOTOS["/photo/3"]


def test_two_jobs_for_one_file_never_share_a_temp_file(tmp_path):
    (tmp_path / "a.jpg.0123abcd.part").write_bytes(b"left by a killed run")
    (tmp_path / "notes.part").write_text("not ours")
    with local_server(routes) as server:
        jobs = [(f"{server.base}/slow/{i}", tmp_path / "a.jpg") for i in (1, 1, 1)]
        assert set(download_files(jobs, FAST)) <= {"downloaded", "present"}
    assert (tmp_path / "a.jpg").read_bytes() == PHOTOS["/photo/1"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.jpg", "notes.part"]  # no temp file outlives a rerun


def test_non_http_urls_are_refused_without_a_request(tmp_path):
    assert fetch("file:///etc/passwd", tmp_path / "p.jpg", FAST) == "bad_url"
    assert not (tmp_path / "p.jpg").exists()


def _write_tsv(path, base):
    rows = ["photo_id\tphoto_url\tphoto_image_url\tphoto_description"]
    rows += [f"id{i}\thttps://unsplash.com/photos/id{i}\t{base}/photo/{i}\ta photo" for i in range(5)]
    rows += [
        "bad\tonly two",  # wrong number of fields
        "local\thttps://unsplash.com/photos/x\tfile:///etc/passwd\tnot http",
        f"../../escape\thttps://unsplash.com/photos/y\t{base}/photo/5\tan id that is a path",
    ]
    path.write_text("\n".join(rows) + "\n")


def test_unsplash_rows_skip_bad_rows_and_never_use_ids_as_paths(tmp_path):
    _write_tsv(tmp_path / "photos.tsv000", "http://127.0.0.1:9")
    tally = SourceTally()
    rows = read_unsplash_rows(tmp_path / "photos.tsv000", tally)
    assert [photo_id for photo_id, _ in rows[:5]] == [f"id{i}" for i in range(5)]
    assert len(rows) == 6 and "/" not in rows[5][0] and "." not in rows[5][0]
    assert tally.skipped == {"bad_row": 2}
    assert sized_url("https://images.unsplash.com/photo-1", 768) == "https://images.unsplash.com/photo-1?w=768&fm=jpg&q=90"
    assert sized_url("https://images.unsplash.com/photo-1?ixid=2", 768).endswith("?ixid=2")


def test_prep_dataset_from_an_unsplash_tsv_with_a_limit_then_resumed(tmp_path):
    out = tmp_path / "out"
    options = PrepOptions(photo=PhotoOptions(size=32, min_size=16), limit=3, download=FAST, progress=False)
    with local_server(routes) as server:
        _write_tsv(tmp_path / "photos.tsv000", server.base)
        report = prep_dataset([tmp_path / "photos.tsv000"], out, options)
        assert sum(server.requests.values()) == 3
        assert all("w=96" in query for query in server.queries)  # size x max aspect: 32 x 3
        again = prep_dataset([tmp_path / "photos.tsv000"], out, options)
        assert sum(server.requests.values()) == 3  # already downloaded, shard already finished
    assert report.downloads == {"downloaded": 3}
    assert again.downloads == {"present": 3} and again.shards_reused == 1
    assert sorted(p.name for p in (out / "downloads" / "photos.tsv000").iterdir()) == ["id0.jpg", "id1.jpg", "id2.jpg"]
    manifest = [json.loads(line) for line in (out / "manifest.jsonl").read_text().splitlines()]
    assert [row["source"] for row in manifest] == ["photos.tsv000/id0", "photos.tsv000/id1", "photos.tsv000/id2"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out", "photos.tsv000"]


def test_prep_dataset_downloads_a_repeated_photo_id_once_and_names_failed_downloads(tmp_path):
    out = tmp_path / "out"
    options = PrepOptions(photo=PhotoOptions(size=32, min_size=16), download=FAST, progress=False)
    with local_server(routes) as server:
        (tmp_path / "photos.tsv000").write_text(
            "photo_id\tphoto_image_url\n"
            f"id1\t{server.base}/slow/1\nid2\t{server.base}/slow/2\nid1\t{server.base}/slow/3\n"
            f"id4\t{server.base}/gone\n"
        )
        report = prep_dataset([tmp_path / "photos.tsv000"], out, options)
    assert report.downloads == {"downloaded": 2}
    assert report.skipped == {"duplicate_id": 1, "download_http_404": 1}
    assert report.failures.named == [f"photos.tsv000/id4: download_http_404 ({server.base}/gone)"]
    manifest = [json.loads(line) for line in (out / "manifest.jsonl").read_text().splitlines()]
    assert [row["source"] for row in manifest] == ["photos.tsv000/id1", "photos.tsv000/id2"]
    assert sorted(p.name for p in (out / "downloads" / "photos.tsv000").iterdir()) == ["id1.jpg", "id2.jpg"]
