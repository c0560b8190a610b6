import sys; sys.path.insert(0, str(__import__("pathlib").Path(snakemake.scriptdir).parent))  # noqa: E702

from ranoflow.script_log import start_log
from ranoflow.train.store_sets import store_listing

log = start_log(snakemake)
listing = store_listing(snakemake.input)
listing.to_csv(snakemake.output[0], sep="\t", index=False)
log.info("%s: %d store files, %.1f MB", snakemake.wildcards.references, len(listing), listing["bytes"].sum() / 1e6)
