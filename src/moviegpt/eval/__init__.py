"""Measuring models: held-out perplexity by film and token type (evaluate), generation (generate) and its quality
(metrics, measures, similarity), recommendation (recommend), and the compared scoring of a book's runs (score)."""
