"""Benchmark the labels package against python-barcode's own ImageWriter.

Run from the repository root: ``.venv/bin/python bench/labels.py [--quick]``.
Prints one JSON line:

* ZPL for 10,000 aliquot labels (labels/s, target >= 20,000/s) at 203 dpi;
* PNG of one aliquot label at 300 dpi (labels/s, target >= 300/s);
* a 96-label A4 PDF sheet at 300 dpi (seconds, target <= 1 s);

each next to python-barcode's ImageWriter rendering the same codes (ZPL: the
rendered image per code; PNG: image saved as PNG; sheet: 96 images saved as a
Pillow PDF), as the ratio ours / baseline. Every figure is the median of several
repetitions in this run, and every repetition uses fresh codes so no cache is
warm from the previous one.
"""

import sys
from pathlib import Path

# Run as a script, this file's directory (bench/) would come first on sys.path
# and "import labels" would import this very file; use the repository instead.
_HERE = Path(__file__).resolve().parent
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != _HERE]
sys.path.insert(0, str(_HERE.parent))

import argparse  # noqa: E402
import io  # noqa: E402
import json  # noqa: E402
import random  # noqa: E402
import statistics  # noqa: E402
import string  # noqa: E402
import time  # noqa: E402

import barcode  # noqa: E402
from barcode.writer import ImageWriter  # noqa: E402

import labels  # noqa: E402

TARGETS = {"zpl_per_s": 20_000, "png_per_s": 300, "pdf_s": 1.0}
ALPHABET = string.ascii_uppercase + string.digits


def aliquots(count: int, seed: int) -> list[labels.LabelData]:
    """A run of visits: 12-character codes, 10 aliquots per participant and visit."""
    rng = random.Random(seed)
    return [
        labels.LabelData(
            "".join(rng.choices(ALPHABET, k=12)),
            {
                "participant": f"P-{seed:02d}{index // 10:05d}",
                "visit": f"V{index // 10 % 6 + 1:02d}",
                "sample_type": "Plasma EDTA" if index % 2 else "Serum",
                "series": f"{index % 10 + 1}/10",
                "date": "2025-11-29",
            },
        )
        for index in range(count)
    ]


def timed(action) -> float:
    start = time.perf_counter()
    action()
    return time.perf_counter() - start


def baseline_image(code: str):
    """python-barcode's own rendering of a code: a PIL image from ImageWriter at 300 dpi."""
    return barcode.get("code128", code, writer=ImageWriter()).render(writer_options={"dpi": 300})


def baseline_images(data: list[labels.LabelData]) -> None:
    for item in data:
        baseline_image(item.code)


def baseline_pngs(data: list[labels.LabelData]) -> None:
    for item in data:
        baseline_image(item.code).save(io.BytesIO(), "PNG", dpi=(300, 300))


def baseline_pdf(data: list[labels.LabelData]) -> None:
    images = [baseline_image(item.code) for item in data]
    images[0].save(io.BytesIO(), "PDF", save_all=True, append_images=images[1:], resolution=300)


def median_rate(count: int, seconds: list[float]) -> float:
    return count / statistics.median(seconds)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer labels and repetitions")
    args = parser.parse_args()
    repetitions = 3 if args.quick else 5
    zpl_count = 2_000 if args.quick else 10_000
    png_count = 100 if args.quick else 500
    baseline_count = 50 if args.quick else 200  # ImageWriter is slow: a sample gives its rate
    sheet_count = 96

    template = labels.load_template("cryo-38x13")
    sheet = labels.load_template("sheet-a4")
    labels.render_zpl(template, aliquots(10, seed=99), 203)  # load fonts and geometry once

    times: dict[str, list[float]] = {
        key: [] for key in ("zpl", "png", "pdf", "b_zpl", "b_png", "b_pdf")
    }
    for rep in range(repetitions):
        zpl_data = aliquots(zpl_count, seed=rep)
        png_data = aliquots(png_count, seed=100 + rep)
        sheet_data = aliquots(sheet_count, seed=200 + rep)
        times["zpl"].append(timed(lambda d=zpl_data: labels.render_zpl(template, d, 203)))
        times["png"].append(
            timed(lambda d=png_data: [labels.render_png(template, item, 300) for item in d])
        )
        times["pdf"].append(timed(lambda d=sheet_data: labels.render_pdf(sheet, d, 300)))
        times["b_zpl"].append(timed(lambda d=zpl_data[:baseline_count]: baseline_images(d)))
        times["b_png"].append(timed(lambda d=png_data[:baseline_count]: baseline_pngs(d)))
        times["b_pdf"].append(timed(lambda d=sheet_data: baseline_pdf(d)))

    zpl_rate = median_rate(zpl_count, times["zpl"])
    png_rate = median_rate(png_count, times["png"])
    baseline_zpl_rate = median_rate(baseline_count, times["b_zpl"])
    baseline_png_rate = median_rate(baseline_count, times["b_png"])
    pdf_s, baseline_pdf_s = statistics.median(times["pdf"]), statistics.median(times["b_pdf"])
    result = {
        "zpl_labels_per_s": round(zpl_rate),
        "zpl_baseline_imagewriter_per_s": round(baseline_zpl_rate),
        "zpl_ratio_ours_over_baseline": round(zpl_rate / baseline_zpl_rate, 1),
        "png_300dpi_labels_per_s": round(png_rate),
        "png_baseline_imagewriter_per_s": round(baseline_png_rate),
        "png_ratio_ours_over_baseline": round(png_rate / baseline_png_rate, 2),
        "pdf_sheet_96_s": round(pdf_s, 4),
        "pdf_baseline_imagewriter_s": round(baseline_pdf_s, 4),
        "pdf_ratio_ours_over_baseline": round(pdf_s / baseline_pdf_s, 3),
        "meets_targets": zpl_rate >= TARGETS["zpl_per_s"]
        and png_rate >= TARGETS["png_per_s"]
        and pdf_s <= TARGETS["pdf_s"],
        "targets": TARGETS,
        "labels": {"zpl": zpl_count, "png": png_count, "pdf": sheet_count},
        "baseline_sample": baseline_count,
        "repetitions": repetitions,
        "statistic": "median",
        "quick": args.quick,
    }
    print(json.dumps(result))


if __name__ == "__main__":
    main()
