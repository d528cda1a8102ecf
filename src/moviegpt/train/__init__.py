"""The train stage: a run from config to a finished run directory (finetune), its Trainer (trainer, callbacks,
schedule), the budget (plan), the model card (card), and the reference study (study)."""
