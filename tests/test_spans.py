from carousel.model.spans import missing_spans, protected_spans


def test_spans_of_each_kind_are_found_in_order():
    text = 'Visit https://example.org/a1?b=2, write to ana.b@mail.es, <b>%s</b> and {name}: 1,250 for 3 tickets (%1$s, %2).'
    assert protected_spans(text) == [
        "https://example.org/a1?b=2", "ana.b@mail.es", "<b>", "%s", "</b>", "{name}", "1,250", "3", "%1$s", "%2",
    ]


def test_a_translation_must_keep_every_span_exactly_once():
    source = "John Smith paid $1,250 for 3 tickets."
    assert not missing_spans(source, "John Smith pagó 1,250 $ por 3 entradas.")
    assert missing_spans(source, "John Smith pagó 1.250 $ por tres entradas.") == ["1,250", "3"]
    assert missing_spans("Open %s now", "Abrir %s %s ahora") == ["%s"]  # twice is not once
    assert not missing_spans("No spans here.", "Aquí no hay nada.")


# -- repair -----------------------------------------------------------------------------------------

from carousel.model.spans import repair_spans  # noqa: E402


def test_a_changed_span_is_replaced_by_the_missing_one_of_its_kind():
    assert repair_spans("Pagó $1,250 por 3 entradas.", "He paid $1.250 for 3 tickets.") == "He paid $1,250 for 3 tickets."
    assert repair_spans("Abrir %s en %d ventanas", "Open %s in %s windows") == "Open %s in %d windows"


def test_a_surplus_copy_is_removed_and_a_complete_translation_is_left_alone():
    assert repair_spans("Hay 3 gatos.", "There are 3 cats 3.") == "There are 3 cats."
    assert repair_spans("Hay 3 gatos.", "There are 3 cats.") == "There are 3 cats."
    assert repair_spans("Hola.", "Hello 7.") == "Hello 7."  # spans the source lacks are not its to judge


def test_a_lost_span_goes_after_the_word_its_source_attends_to():
    source_pieces = ["▁Abre", "▁%s", "▁ahora"]
    target_pieces = ["▁Open", "▁now"]
    alignment = [[0.1, 0.8, 0.1, 0.0], [0.0, 0.1, 0.9, 0.0], [0, 0, 0, 1]]  # "Open" attends to "%s"
    assert repair_spans("Abre %s ahora", "Open now", source_pieces, target_pieces, alignment) == "Open %s now"
    # without attention: at the end, before the final punctuation
    assert repair_spans("Abre %s ahora.", "Open now.") == "Open now %s."


def test_every_repaired_translation_keeps_every_span_exactly_once():
    cases = [
        ("Visite https://example.org o escriba a ana@example.org antes del 12/05.", "Visit the site."),
        ("<b>%1$s</b> de {count} archivos", "of {n} files"),
        ("En 2010 y 2011.", "In 2010 and 2010 and 2010."),
    ]
    for source, translation in cases:
        assert not missing_spans(source, repair_spans(source, translation)), (source, repair_spans(source, translation))


def test_a_mangled_address_or_url_is_replaced_not_kept_beside_the_right_one():
    """The model spells an address it does not know as words it knows: repair puts the source's address
    in its place instead of adding it, so no address appears twice ("press@ejemplo. prensa@ejemplo.es")."""
    source = "Para más información, escriba a prensa@ejemplo.es o visite www.ejemplo.es/prensa."
    repaired = repair_spans(source, "For more information, write to press@ejemplo. or visit www.example.es/press.")
    assert repaired == "For more information, write to prensa@ejemplo.es. or visit www.ejemplo.es/prensa."
    assert repaired.count("@") == 1 and repaired.count("www.") == 1
    # a correct address elsewhere is not taken for a mangled one
    assert repair_spans("Copie a ana@a.es y a luis@b.es.", "Copy ana@a.es and luis@b.") == "Copy ana@a.es and luis@b.es."


def test_confidence_reads_the_models_own_output_before_the_repair(calibrated_models_dir):
    """A number the model lost is evidence of a poor translation, even though the repair puts it back."""
    from carousel.model.search import SearchConfig
    from carousel.model.loading import load_translator

    translator = load_translator(calibrated_models_dir / "tiny-es-en", "none", confidence=True)
    source = "Y dijo Dios: 4817 veces."  # the tiny Bible model has never seen a digit
    raw = translator.translate([source], SearchConfig(beam_size=2, repair_spans=False, return_confidence=True))[0][0]
    repaired = translator.translate([source], SearchConfig(beam_size=2, return_confidence=True))[0][0]
    assert "4817" not in raw.text and not missing_spans(source, repaired.text)
    assert repaired.signals == raw.signals and repaired.signals["numbers"] < 1


def test_template_variables_and_backquoted_code_are_kept_as_they_are():
    text = "Hola {{name}}: tienes ${count} mensajes de :user; ejecute `apt update` (Nota: a las 10:30, en C:\\dir)."
    assert protected_spans(text) == ["{{name}}", "${count}", ":user", "`apt update`", "10:30"]
    assert repair_spans("Hola {{name}}, ejecute `apt update`.", "Hello {name}, run `apt upgrade`.") == \
        "Hello {{name}}, run `apt update`."
