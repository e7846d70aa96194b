from carousel.model.spans import missing_spans, protected_spans, spans_survive


def test_spans_of_each_kind_are_found_in_order():
    text = 'Visit https://example.org/a1?b=2, write to ana.b@mail.es, <b>%s</b> and {name}: 1,250 for 3 tickets (%1$s, %2).'
    assert protected_spans(text) == [
        "https://example.org/a1?b=2", "ana.b@mail.es", "<b>", "%s", "</b>", "{name}", "1,250", "3", "%1$s", "%2",
    ]


def test_a_translation_must_keep_every_span_exactly_once():
    source = "John Smith paid $1,250 for 3 tickets."
    assert spans_survive(source, "John Smith pagó 1,250 $ por 3 entradas.")
    assert missing_spans(source, "John Smith pagó 1.250 $ por tres entradas.") == ["1,250", "3"]
    assert missing_spans("Open %s now", "Abrir %s %s ahora") == ["%s"]  # twice is not once
    assert spans_survive("No spans here.", "Aquí no hay nada.")
