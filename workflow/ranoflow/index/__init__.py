"""Index stage (rules/index.smk): the released LUMIERE tree read as is, scorable pairs and folds."""
