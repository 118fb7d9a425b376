"""The streaming S3 upload that output files are written through, against a moto server on 127.0.0.1."""

from collections.abc import Iterator
from typing import Any

import pytest

from cdpbridge.exports.multipart import MIN_PART_BYTES, S3StreamingUpload
from tests.moto_server import moto_client, moto_server

BUCKET = "drop"


@pytest.fixture(scope="module")
def s3() -> Iterator[Any]:
    with moto_server() as endpoint:
        client = moto_client(endpoint, "s3")
        client.create_bucket(Bucket=BUCKET)
        yield client


def body(s3: Any, key: str) -> bytes:
    data: bytes = s3.get_object(Bucket=BUCKET, Key=key)["Body"].read()
    return data


def test_a_small_object_is_one_put(s3: Any) -> None:
    upload = S3StreamingUpload(s3, BUCKET, "small.csv", content_type="text/csv")
    upload.write(b"a,b\r\n")
    upload.write(b"1,2\r\n")
    assert upload.complete() == f"s3://{BUCKET}/small.csv"
    assert body(s3, "small.csv") == b"a,b\r\n1,2\r\n"
    assert s3.head_object(Bucket=BUCKET, Key="small.csv")["ContentType"] == "text/csv"


def test_a_big_object_goes_up_in_parts_as_they_fill(s3: Any) -> None:
    # Given writes adding up to two and a half parts
    chunk = bytes(range(256)) * 4096  # 1 MiB
    upload = S3StreamingUpload(s3, BUCKET, "big.csv", content_type="text/csv", part_bytes=MIN_PART_BYTES)
    for _ in range(12):
        upload.write(chunk)
        # Then no more than one part is ever held in memory
        assert upload.buffered_bytes < MIN_PART_BYTES
    upload.complete()

    # And the object is the whole of what was written, assembled from three parts
    assert body(s3, "big.csv") == chunk * 12
    assert s3.head_object(Bucket=BUCKET, Key="big.csv")["ETag"].strip('"').endswith("-3")
    assert upload.bytes_written == 12 * len(chunk)


def test_an_aborted_upload_leaves_nothing_and_accepts_late_writes(s3: Any) -> None:
    upload = S3StreamingUpload(s3, BUCKET, "aborted.csv", content_type="text/csv", part_bytes=MIN_PART_BYTES)
    upload.write(b"x" * (MIN_PART_BYTES + 10))
    upload.abort()
    assert upload.write(b"flushed after the failure") == 25
    assert "Contents" not in s3.list_objects_v2(Bucket=BUCKET, Prefix="aborted.csv")
    assert s3.list_multipart_uploads(Bucket=BUCKET).get("Uploads", []) == []


def test_parts_smaller_than_s3_allows_are_refused(s3: Any) -> None:
    with pytest.raises(ValueError, match="at least"):
        S3StreamingUpload(s3, BUCKET, "x", content_type="text/csv", part_bytes=1024)
