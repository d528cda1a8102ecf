"""The model stage: the tokenizer (tokenizer), the pretrained model or a stand-in (causal_lm, assets), LoRA."""
