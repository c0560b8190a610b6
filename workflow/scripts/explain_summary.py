import sys; sys.path.insert(0, str(__import__("pathlib").Path(snakemake.scriptdir).parent))  # noqa: E702

import logging

from ranoflow.explain_summary import collect_scores, summarise

logging.basicConfig(filename=snakemake.log[0], level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")

summary = summarise(collect_scores(snakemake.input.dirs))
summary.to_csv(snakemake.output[0], sep="\t", index=False, float_format="%.4f")
n_maps = int((summary["level"] == "pair").sum()) if not summary.empty else 0
aggregates = summary[summary["level"] == "aggregate"] if not summary.empty else summary
logging.info("%d explained maps; aggregates:\n%s", n_maps, aggregates.to_string(index=False))
