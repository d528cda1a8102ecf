"""The data stage: films from any source, cleaned and split (films), streamed (stream), and made into token rows
(tokens): padded, packed, or packed with each film kept apart."""
