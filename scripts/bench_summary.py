#!/usr/bin/env python3
"""bench_summary.py RESULTS --rounds N --images "IMG ..." --env TEXT: the markdown tables of bench.sh.

RESULTS has one line per run: SECTION IMAGE TOOL VALUE (seconds; MiB for TOOL "lamina-rss").
Prints, per section, the median of every tool per image, lamina's ratio to each other tool, then every
round's figures (so that a noisy round shows)."""
import argparse
import statistics

LOAD_TOOLS = [  # (tool, column title)
    ("lamina", "lamina load + mount"),
    ("containerd", "ctr import"),
    ("podman", "podman load"),
    ("umoci", "umoci unpack"),
    ("tar", "GNU tar"),
    ("tar+syncfs", "tar + syncfs"),
    ("tar+sha", "tar + sha256"),
    ("decompress", "pigz/zstd -dc"),
]
LOAD_RATIOS = ["containerd", "podman", "umoci", "tar", "decompress"]
PULL_TOOLS = [
    ("lamina", "lamina pull"),
    ("containerd", "ctr pull"),
    ("podman", "podman pull"),
    ("skopeo+umoci", "skopeo copy + umoci unpack"),
]
PULL_RATIOS = ["containerd", "podman", "skopeo+umoci"]


def read(path):
    runs = {}
    for line in open(path):
        section, image, tool, value = line.split()
        runs.setdefault((section, image, tool), []).append(float(value))
    return runs


def cell(med, key, note="", digits=2):
    return f"{med[key]:.{digits}f}{note}" if key in med else "–"


def ratio(med, a, b):
    return f"{med[a] / med[b]:.2f}x" if a in med and b in med and med[b] > 0 else "–"


def table(section, images, tools, ratios, med, extra=None):
    present = [(t, title) for t, title in tools if any((section, i, t) in med for i in images)]
    head = [title for _, title in present] + [f"lamina / {t}" for t in ratios
                                              if any((section, i, t) in med for i in images)]
    if extra:
        head.append(extra[0])
    print("| image | " + " | ".join(head) + " |")
    print("|---|" + "---:|" * len(head))
    for image in images:
        row = []
        for t, _ in present:
            note = " (gzip)" if t == "umoci" and image.endswith(":zstd") else ""
            row.append(cell(med, (section, image, t), note))
        for t in ratios:
            if any((section, i, t) in med for i in images):
                row.append(ratio(med, (section, image, "lamina"), (section, image, t)))
        if extra:
            row.append(extra[1](image))
        print(f"| {image} | " + " | ".join(row) + " |")


def main():
    p = argparse.ArgumentParser()
    p.add_argument("results")
    p.add_argument("--rounds", required=True)
    p.add_argument("--images", required=True)
    p.add_argument("--env", required=True)
    a = p.parse_args()
    runs = read(a.results)
    med = {k: statistics.median(v) for k, v in runs.items()}
    images = a.images.split()
    print(f"Median of {a.rounds} rounds, wall seconds; {a.env}.")
    if any(k[0] == "load" for k in runs):
        print()
        print("Load (oci-archive for lamina, ctr and podman; the OCI layout for umoci and tar; "
              "umoci on the gzip copy of zstd images):")
        print()
        rss = ("lamina peak RSS (MiB)", lambda i: cell(med, ("load", i, "lamina-rss"), digits=1))
        table("load", images, LOAD_TOOLS, LOAD_RATIOS, med, rss)
        if any(k[2] == "baseline" for k in runs):
            print()
            print("| image | lamina | baseline lamina | lamina / baseline | peak RSS (MiB) lamina, baseline |")
            print("|---|---:|---:|---:|---:|")
            for i in images:
                print(f"| {i} | {cell(med, ('load', i, 'lamina'))} | {cell(med, ('load', i, 'baseline'))} "
                      f"| {ratio(med, ('load', i, 'lamina'), ('load', i, 'baseline'))} "
                      f"| {cell(med, ('load', i, 'lamina-rss'), digits=1)}, "
                      f"{cell(med, ('load', i, 'baseline-rss'), digits=1)} |")
    if any(k[0] == "pull" for k in runs):
        print()
        print("Pull from a local distribution registry over plain HTTP (skopeo + umoci: gzip images only, "
              "umoci reads no zstd):")
        print()
        table("pull", images, PULL_TOOLS, PULL_RATIOS, med)
    print()
    print("All rounds:")
    for (section, image, tool), v in sorted(runs.items()):
        print(f"- {section} {image} {tool}: " + " ".join(f"{s:.2f}" for s in v))


if __name__ == "__main__":
    main()
