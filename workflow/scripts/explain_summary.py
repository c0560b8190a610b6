import sys; sys.path.insert(0, str(__import__("pathlib").Path(snakemake.scriptdir).parent))  # noqa: E702

from ranoflow.explain.summary import collect_scores, summarise
from ranoflow.script_log import start_log

log = start_log(snakemake)
summary = summarise(collect_scores(snakemake.input.dirs))
summary.to_csv(snakemake.output[0], sep="\t", index=False, float_format="%.4f")
n_maps = int((summary["level"] == "pair").sum()) if not summary.empty else 0
aggregates = summary[summary["level"] == "aggregate"] if not summary.empty else summary
log.info("%d explained maps; aggregates:\n%s", n_maps, aggregates.to_string(index=False))
