"""GPU check, one command for a GPU node: the tiny demo (tests/demo_run.py) run through Snakemake with its
train jobs on CUDA with mixed precision, then its explanation rule on the trained models; then the
training benchmark of DenseNet264 at 128^3 (config/lumiere.yaml's paper_best, batch size as configured)
with steps/s, peak GPU memory and data-wait share.

Without CUDA it says so on its first line and runs the same on CPU (the train logs then say `on cpu`,
and DenseNet264 is timed at batch 1 for one step), so the script itself is checked anywhere.

  python tests/benchmarks/gpu_check.py [--workdir DIR] [--cores 8]
"""

from __future__ import annotations

import argparse
import re
import subprocess
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "tests"))
sys.path.insert(0, str(REPO / "workflow"))
sys.path.insert(0, str(Path(__file__).resolve().parent))


def tiny_gpu_run(workdir: Path, cores: int, cuda: bool) -> list[str]:
    """The tiny demo with train jobs asking for a GPU and AMP on; returns each train log's device line."""
    from demo_run import check, snakemake, snapshot, tiny_config, write_config

    gpu = 1 if cuda else 0
    config = tiny_config(training={"amp": True},
                         resources={"train": {"gpu": gpu, "runtime": 20, "mem_mb": 4000, "threads": 2}})
    configfile = write_config(snapshot(workdir), config)
    resources = ["--resources", f"gpu={gpu}"] if cuda else []
    check(snakemake(workdir, configfile, "--cores", str(cores), *resources, timeout_s=1800))
    lines = []
    for log in sorted((workdir / "results/logs/train").rglob("*.log")):
        found = re.search(r"experiment \S+ fold \d+ on (\S+) \(amp (\w+)\)", log.read_text())
        lines.append(f"{log.relative_to(workdir)}: " + (f"device {found[1]}, amp {found[2]}" if found else "no device line"))
    explained = sorted((workdir / "results/explain").rglob("*.nii.gz"))
    lines.append(f"explain: {len(explained)} attribution maps under results/explain")
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--workdir", type=Path, help="where the tiny demo runs (default: a temporary folder)")
    parser.add_argument("--cores", type=int, default=4)
    parser.add_argument("--skip-demo", action="store_true", help="only the DenseNet264 figures")
    args = parser.parse_args()
    import torch

    cuda = torch.cuda.is_available()
    if cuda:
        print(f"CUDA: {torch.cuda.get_device_name(0)}, torch {torch.__version__}, CUDA {torch.version.cuda}")
    else:
        print("NO CUDA DEVICE (torch.cuda.is_available() is False): running the same checks on CPU; "
              "these are not GPU figures")
    if not args.skip_demo:
        with tempfile.TemporaryDirectory(prefix="gpu_check_") as tmp:
            workdir = args.workdir or Path(tmp)
            workdir.mkdir(parents=True, exist_ok=True)
            for line in tiny_gpu_run(workdir, args.cores, cuda):
                print(line)
    command = [sys.executable, str(Path(__file__).with_name("training.py")), "--config",
               str(REPO / "config/lumiere.yaml"), "--experiment", "paper_best",
               "--device", "cuda" if cuda else "cpu"]
    command += ["--steps", "10", "--threads", "4"] if cuda else ["--steps", "1", "--batch-size", "1", "--threads", "2"]
    done = subprocess.run(command, capture_output=True, text=True)
    print(done.stdout.strip() or done.stderr[-2000:])
    sys.exit(done.returncode)


if __name__ == "__main__":
    main()
