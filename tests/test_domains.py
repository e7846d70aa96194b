"""Domain routing: the classifier (routing/domains.py), the shipped models by domain (routing/shipped.py),
the routed translator of the CLI (routing/translator.py) and the service's `domain` field."""

from __future__ import annotations

import json
import warnings
from contextlib import contextmanager

import pytest

from carousel.routing.domains import DomainClassifier, DomainRouting, DomainsError, load_routing, model_domain
from carousel.errors import UserError
from carousel.routing.translator import RoutedTranslator
from tests.helpers import StandInTextTranslator, StandInTranslator

with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    from fastapi.testclient import TestClient

VERSES = [
    "y dijo Jehová a Moisés: habla a los hijos de Israel",
    "y los hijos de Israel hicieron conforme a todo lo que Jehová mandó",
    "porque de tal manera amó Dios al mundo",
    "bienaventurados los pobres en espíritu, porque de ellos es el reino de los cielos",
    "y respondió Jesús y les dijo: de cierto os digo",
]
GENERAL = [
    "haga clic en el botón para guardar el archivo",
    "no se pudo abrir el archivo de configuración",
    "el gobierno anunció nuevas medidas económicas",
    "el tren sale de la estación a las ocho",
    "seleccione una carpeta para guardar los documentos",
]


def fitted(margin: float = 0.5, context: int = 0, context_weight: float = 0.5, prior: float = 0.0) -> DomainClassifier:
    """A classifier of the toy texts; by default each text is read alone (tests of context say otherwise)
    and scored by the plain mean (the prior's test says otherwise)."""
    return DomainClassifier.fit({"bible": [VERSES], "general": [GENERAL[:2], GENERAL[2:]]}, margin=margin,
                                context=context, context_weight=context_weight, prior=prior)


def test_clear_text_goes_to_its_domain_and_unknown_words_to_the_default():
    classifier = fitted()
    assert classifier.classify("y dijo Jehová a los hijos de Israel")[0] == "bible"
    assert classifier.classify("no se pudo guardar el archivo")[0] == "general"
    assert classifier.classify("zxq wvk")[0] == "general"  # no evidence: the default domain
    assert classifier.classify("")[0] == "general"


def test_the_margin_keeps_weak_evidence_in_the_default_domain():
    text = "y dijo el gobierno"  # one verse-like pair, one news word
    score = fitted().classify(text)[1]
    assert fitted(margin=score - 0.01).classify(text)[0] == "bible"
    assert fitted(margin=score + 0.01).classify(text)[0] == "general"


def test_the_prior_asks_more_evidence_of_a_short_text_than_of_a_long_one():
    """One verse-leaning word is all "y Moisés" has; a whole verse has many. With a prior of a few
    features the short text stays in the default domain and the verse still leaves it."""
    short, verse = "y Moisés", "y dijo Jehová a Moisés: habla a los hijos de Israel"
    assert fitted().classify(short)[0] == "bible"
    assert fitted(prior=6).classify(short)[0] == "general"
    assert fitted(prior=6).classify(verse)[0] == "bible"
    plain, shrunk = fitted().classify(verse)[1], fitted(prior=6).classify(verse)[1]
    assert 0 < shrunk < plain  # a mean pulled towards no evidence, not a different ranking


def test_context_carries_a_weak_verse_among_verses_but_not_a_clear_line_out_of_its_domain():
    weak = VERSES[3]  # a verse whose own evidence falls short of the margin
    alone = fitted(margin=0.45).classify(weak)
    assert alone[0] == "general" and 0 < alone[1] < 0.45
    among_verses = fitted(margin=0.45, context=1).classify_in_context([VERSES[0], weak, VERSES[4]])
    assert among_verses[1][0] == "bible"
    among_software = fitted(margin=0.45, context=1).classify_in_context([GENERAL[0], weak, GENERAL[1]])
    assert [domain for domain, _ in among_software] == ["general"] * 3
    clear = fitted(margin=0.45, context=1).classify_in_context([VERSES[0], GENERAL[3], VERSES[4]])
    assert clear[1][0] == "general"  # its own evidence outweighs its neighbours'
    texts = [GENERAL[0], weak, *VERSES]
    assert fitted(context=0).classify_in_context(texts) == [fitted().classify(t) for t in texts]


def test_fitting_needs_the_default_domain_and_another():
    with pytest.raises(DomainsError, match="general"):
        DomainClassifier.fit({"bible": [VERSES]})


def test_routing_round_trips_through_json_and_reports_a_broken_file(tmp_path):
    routing = DomainRouting("general", {"es": fitted(context=2, context_weight=0.25)}, {"mix": "test"})
    routing.save(tmp_path / "domains.json")
    loaded = load_routing(tmp_path)
    assert (loaded.classifiers["es"].context, loaded.classifiers["es"].context_weight) == (2, 0.25)
    assert loaded.classify("es", VERSES[0]) == "bible"
    assert loaded.classify("en", VERSES[0]) == "general"  # no English classifier: the default
    assert loaded.fitted_on == {"mix": "test"}
    (tmp_path / "domains.json").write_text('{"format": 1, "default": "general", "languages": {"es": {}}}')
    with pytest.raises(DomainsError, match="domains.json"):
        load_routing(tmp_path)
    data = json.loads(json.dumps({"format": 1, "default": "general", "languages": {"es": fitted().to_json()}}))
    data["languages"]["es"]["context_weight"] = 2
    (tmp_path / "domains.json").write_text(json.dumps(data))
    with pytest.raises(DomainsError, match="context_weight"):
        load_routing(tmp_path)
    assert load_routing(tmp_path / "none").classify("es", VERSES[0]) == "general"


def write_model_dir(directory, domain=None, pair=("es", "en")):
    directory.mkdir(parents=True)
    (directory / "config.json").write_text(json.dumps({"src_lang": pair[0], "tgt_lang": pair[1]}))
    (directory / "card.json").write_text(json.dumps({"name": directory.name, **({"domain": domain} if domain else {})}))


def test_shipped_models_are_found_by_domain(tmp_path, monkeypatch):
    from carousel.routing.shipped import model_for, models_for

    write_model_dir(tmp_path / "bible-es-en", "bible")
    write_model_dir(tmp_path / "general-es-en")  # no domain in the card: general
    monkeypatch.setenv("CAROUSEL_MODELS_DIR", str(tmp_path))
    assert model_domain(tmp_path / "general-es-en") == "general"
    assert set(models_for("es", "en")) == {"bible", "general"}
    assert model_for("es", "en").name == "general-es-en"  # the default domain
    assert model_for("es", "en", "bible").name == "bible-es-en"
    with pytest.raises(UserError, match="domain 'medical'.*bible, general"):
        model_for("es", "en", "medical")


def test_routed_translator_sends_each_text_to_its_domain_and_keeps_the_order():
    bible = StandInTextTranslator(render=lambda text: f"bible:{text}")
    general = StandInTextTranslator(render=lambda text: f"general:{text}")
    for translator in (bible, general):
        translator.card = {"name": "stand-in"}
    routed = RoutedTranslator({"bible": bible, "general": general}, DomainRouting("general", {"es": fitted()}, {}))
    texts = [GENERAL[0], VERSES[0], GENERAL[1], VERSES[1]]
    results = routed.translate_texts(texts, search=None)
    assert [r[0][0] for r in results] == [
        f"general:{GENERAL[0]}", f"bible:{VERSES[0]}", f"general:{GENERAL[1]}", f"bible:{VERSES[1]}"
    ]


# -- the service -----------------------------------------------------------------------------------


def domain_app(tmp_path, context: int = 0, margin: float = 0.5):
    """The service over two stand-in es→en models, `general` and `bible`, routed by a fitted classifier."""
    from carousel.service.app import create_app
    from carousel.service.registry import ModelRegistry
    from carousel.service.settings import ServiceSettings

    write_model_dir(tmp_path / "bible-es-en", "bible")
    write_model_dir(tmp_path / "general-es-en", "general")
    DomainRouting("general", {"es": fitted(margin, context)}, {}).save(tmp_path / "domains.json")
    translators = {
        "bible-es-en": StandInTranslator(render=lambda s, search: f"B {s}"),
        "general-es-en": StandInTranslator(render=lambda s, search: f"G {s}"),
    }

    def load(directory, quantization):
        translator = translators[directory.name]
        translator.card = {"name": directory.name}
        return translator

    settings = ServiceSettings(models_dir=tmp_path, batch_workers=1)
    return create_app(settings, ModelRegistry(settings, load))


@contextmanager
def domain_client(tmp_path, context: int = 0, margin: float = 0.5):
    app = domain_app(tmp_path, context, margin)
    with TestClient(app) as client:
        assert app.state.registry.wait_until_loaded(30)
        yield client


def test_the_service_reads_a_requests_strings_together(tmp_path):
    weak = VERSES[3].capitalize() + "."
    with domain_client(tmp_path, context=1, margin=0.45) as client:
        alone = client.post("/translate", json={"q": [weak], "source": "es", "target": "en", "domain": "auto"})
        assert alone.json()["domain"] == ["general"]
        q = [VERSES[0].capitalize() + ".", weak, VERSES[4].capitalize() + ".", GENERAL[3].capitalize() + "."]
        together = client.post("/translate", json={"q": q, "source": "auto", "target": "en", "domain": "auto"})
        assert together.status_code == 200, together.text
        domains = together.json()["domain"]
        assert domains[:2] == ["bible", "bible"] and domains[-1] == "general"


def test_the_service_routes_each_string_and_honours_an_explicit_domain(tmp_path):
    q = [GENERAL[0].capitalize() + ".", VERSES[0].capitalize() + "."]
    with domain_client(tmp_path) as client:
        routed = client.post("/translate", json={"q": q, "source": "es", "target": "en"})
        assert routed.status_code == 200, routed.text
        assert routed.json() == {"translatedText": [f"G {q[0]}", f"B {q[1]}"]}  # no `domain` unless asked
        told = client.post("/translate", json={"q": q, "source": "es", "target": "en", "domain": "general"})
        assert told.json() == {"translatedText": [f"G {q[0]}", f"G {q[1]}"], "domain": ["general", "general"]}
        auto = client.post("/translate", json={"q": q, "source": "es", "target": "en", "domain": "auto"})
        assert auto.json()["domain"] == ["general", "bible"]
        models = client.get("/models").json()
        assert sorted((m["name"], m["domain"]) for m in models) == [("bible-es-en", "bible"), ("general-es-en", "general")]


def test_an_unknown_domain_is_a_400_naming_the_domains(tmp_path):
    with domain_client(tmp_path) as client:
        answer = client.post("/translate", json={"q": "Hola.", "source": "es", "target": "en", "domain": "medical"})
    assert answer.status_code == 400
    assert "'medical'" in answer.json()["error"] and "auto, bible, general" in answer.json()["error"]


# -- the commands, on the tiny model as two domains ------------------------------------------------


@pytest.fixture
def two_domain_models(tmp_path, tiny_model_dir, monkeypatch):
    """A models directory with the tiny model as `general-es-en` and a noisy copy as `bible-es-en`,
    routed by a classifier that sends verse-like text to the Bible copy."""
    import shutil

    from carousel.model.card import update_card
    from tests.conftest import save_perturbed_copy

    shutil.copytree(tiny_model_dir, tmp_path / "general-es-en")
    save_perturbed_copy(tiny_model_dir, tmp_path / "bible-es-en", 0.5)
    update_card(tmp_path / "bible-es-en", domain="bible")
    DomainRouting("general", {"es": fitted()}, {}).save(tmp_path / "domains.json")
    monkeypatch.setenv("CAROUSEL_MODELS_DIR", str(tmp_path))
    return tmp_path


@pytest.mark.slow
def test_evaluate_and_translate_use_the_shipped_models_by_domain(two_domain_models, tiny_corpus, tmp_path, capsys):
    from carousel.cli import main
    from carousel.model.loading import load_translator

    def evaluate(*flags):
        code = main(["evaluate", "--pair", "es-en", "--corpus", str(tiny_corpus), "--src", "es", "--ref", "en",
                     "--beam", "1", "--json", *flags])
        out, err = capsys.readouterr()
        assert code == 0, err
        return json.loads(out)["systems"][0]

    general, bible = evaluate("--domain", "general"), evaluate("--domain", "bible")
    assert general["name"].startswith("shipped es-en (general)")
    direct = main(["evaluate", "--model", str(two_domain_models / "bible-es-en"), "--corpus", str(tiny_corpus),
                   "--src", "es", "--ref", "en", "--beam", "1", "--json"])
    assert direct == 0
    assert json.loads(capsys.readouterr().out)["systems"][0]["bleu"] == bible["bleu"]
    assert general["bleu"] != bible["bleu"]  # the noisy copy translates differently

    source = tmp_path / "in.txt"
    source.write_text(VERSES[0] + "\n" + GENERAL[0] + "\n", encoding="utf-8")
    assert main(["translate", "--source", "es", "--target", "en", "--beam", "1", "--quiet", str(source)]) == 0
    routed = capsys.readouterr().out.splitlines()
    from carousel.model.search import SearchConfig

    def alone(name, text):
        return load_translator(two_domain_models / name).translate_texts([text], SearchConfig(beam_size=1))[0][0][0]

    assert routed == [alone("bible-es-en", VERSES[0]), alone("general-es-en", GENERAL[0])]


@pytest.mark.slow
def test_evaluate_without_a_model_uses_the_shipped_models_of_the_columns_languages(two_domain_models, tiny_corpus, capsys):
    from carousel.cli import main

    def systems(*flags):
        code = main(["evaluate", "--corpus", str(tiny_corpus), "--src", "es", "--ref", "en", "--beam", "1", "--json", *flags])
        out, err = capsys.readouterr()
        assert code == 0, err
        return json.loads(out)["systems"]

    default = systems()
    assert [s["name"] for s in default] == [s["name"] for s in systems("--pair", "es-en")]
    assert default[0]["name"].startswith("shipped es-en (auto)")
    assert default[0]["bleu"] == systems("--pair", "es-en")[0]["bleu"]


def test_a_domain_the_pair_lacks_or_with_a_named_model_is_a_one_line_error(two_domain_models, tiny_corpus, capsys):
    from carousel.cli import main

    code = main(["evaluate", "--pair", "es-en", "--domain", "medical", "--corpus", str(tiny_corpus),
                 "--src", "es", "--ref", "en"])
    err = capsys.readouterr().err
    assert code == 2 and "domain 'medical'" in err and "bible, general" in err
    code = main(["translate", "--model", str(two_domain_models / "general-es-en"), "--domain", "bible"])
    assert code == 2 and "--domain" in capsys.readouterr().err


def test_prepare_domains_fits_the_router_with_its_context_and_refuses_bad_settings(tmp_path, capsys):
    from carousel.cli import main

    def part(name, texts):
        (tmp_path / f"{name}.es").write_text("\n".join(texts) + "\n", encoding="utf-8")
        (tmp_path / f"{name}.en").write_text("\n".join(f"{name} {i}" for i in range(len(texts))) + "\n", encoding="utf-8")
        return {"name": name, "files": {"es": str(tmp_path / f"{name}.es"), "en": str(tmp_path / f"{name}.en")}}

    spec = {"name": "toy", "languages": ["es", "en"], "train": [part("verses", VERSES * 4), part("software", GENERAL * 4)],
            "valid": [part("dev", GENERAL[:2])]}
    (tmp_path / "mix.yaml").write_text(json.dumps(spec), encoding="utf-8")  # JSON is YAML
    out = tmp_path / "domains.json"
    argv = ["prepare", "domains", "--spec", str(tmp_path / "mix.yaml"), "--domain", "verses=bible", "--out", str(out)]
    assert main([*argv, "--context", "2", "--context-weight", "0.25"]) == 0
    printed = capsys.readouterr().out
    assert "es: held-back accuracy" in printed and "verses" in printed
    routing = load_routing(tmp_path)
    assert (routing.classifiers["es"].context, routing.classifiers["es"].context_weight) == (2, 0.25)
    assert routing.classify("es", VERSES[0]) == "bible" and routing.classify("es", GENERAL[0]) == "general"
    assert main([*argv, "--context-weight", "1.5"]) == 2
    assert "--context-weight" in capsys.readouterr().err
