"""Upload ingestion speed: sniff + parse + validate + normalise to JSONL + encrypt, per format.

    .venv/bin/python bench/ingest_throughput.py [--mb 64]

Writes synthetic files (JSONL, GBK CSV, JSON array, Parquet) to a temp folder and streams each
through `datasets_app.formats.normalize` into an `EncryptedWriter`, as an upload does. Prints
MB/s of input and the Python heap peak (tracemalloc); asserts nothing.
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import sys
import tempfile
import time
import tracemalloc
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from datasets_app.crypto import EncryptedWriter, KeyStore
from datasets_app.formats import normalize

ROW = {
    "instruction": "提取患者信息并总结",
    "input": "患者男，58岁，因胸痛入院，冠脉造影示前降支狭窄。"
    "Patient admitted with chest pain; stent placed.",
    "output": "冠心病，支架术后恢复良好。",
}


def make_files(folder: Path, megabytes: int) -> dict[str, Path]:
    line = json.dumps(ROW, ensure_ascii=False) + "\n"
    count = megabytes * 2**20 // len(line.encode())
    files = {
        "jsonl": folder / "data.jsonl",
        "csv-gbk": folder / "data.csv",
        "json-array": folder / "data.json",
    }
    files["jsonl"].write_text(line * count, encoding="utf-8")
    with open(files["csv-gbk"], "w", encoding="gbk", newline="") as out:
        out.write("指令,输入,输出\n")
        for _ in range(count):
            out.write(f'{ROW["instruction"]},"{ROW["input"]}",{ROW["output"]}\n')
    with open(files["json-array"], "w", encoding="utf-8") as out:
        out.write("[" + ",".join([json.dumps(ROW, ensure_ascii=False)] * count) + "]")
    try:
        import pyarrow as pa
        import pyarrow.parquet as pq

        table = pa.table({k: [v] * count for k, v in ROW.items()})
        files["parquet"] = folder / "data.parquet"
        pq.write_table(table, files["parquet"])
    except ImportError:
        pass
    return files


def ingest(path: Path, target: Path, keystore: KeyStore):
    with open(target, "wb") as raw, EncryptedWriter(raw, keystore) as out:
        return normalize(path, path.name, out)


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--mb", type=int, default=64)
    args = parser.parse_args()
    keystore = KeyStore.from_base64(base64.b64encode(os.urandom(32)).decode())
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        files = make_files(folder, args.mb)
        # Rows/s compares formats fairly: a compressed Parquet file is tiny beside its rows.
        print(
            f"{'format':<12}{'input MB':>10}{'rows':>12}{'rows/s':>10}{'MB/s':>9}"
            f"{'heap peak MB':>14}"
        )
        for name, path in files.items():
            size = path.stat().st_size
            # Timed without tracemalloc (it slows Python several times), then measured with it.
            started = time.perf_counter()
            result = ingest(path, folder / "out.hrth", keystore)
            seconds = time.perf_counter() - started
            tracemalloc.start()
            ingest(path, folder / "out.hrth", keystore)
            peak = tracemalloc.get_traced_memory()[1]
            tracemalloc.stop()
            print(
                f"{name:<12}{size / 1e6:>10.2f}{result.row_count:>12,}"
                f"{result.row_count / seconds:>10,.0f}{size / 1e6 / seconds:>9.2f}"
                f"{peak / 1e6:>14.1f}"
            )
    return 0


if __name__ == "__main__":
    sys.exit(main())
