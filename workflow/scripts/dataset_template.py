import sys; sys.path.insert(0, str(__import__("pathlib").Path(snakemake.scriptdir).parent))  # noqa: E702

import nibabel as nib

from ranoflow.preprocess.dataset_template import average_template, template_images
from ranoflow.script_log import start_log
from ranoflow.tables import read_tsv

log = start_log(snakemake)
modality = snakemake.params.settings["modality"]
paths = template_images(read_tsv(snakemake.input.studies)["dbt_skullstrip_dir"], modality)
template = average_template(paths)
nib.save(template.head, snakemake.output.template_head)
nib.save(template.brain_mask, snakemake.output.template_mask)
log.info(
    "dataset template: mean of %d %s atlas-space skull-stripped images, grid %s, %d brain voxels",
    template.n_images,
    modality,
    template.head.shape,
    int(template.brain_mask.get_fdata().sum()),
)
