"""Loading a model directory for translation: the weights in the chosen precision on the chosen
device, the reverse-direction model the card names for reranking (noisy channel), and the confidence
calibration with its reverse model. Every problem is a `ModelLoadError` naming the file and the fix.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from carousel.fileio import sha256_file
from carousel.model.card import ModelLoadError, channel_settings
from carousel.model.checkpoint import LoadedModel, load_model_dir
from carousel.model.confidence import CalibrationError, read_calibration
from carousel.model.precision import BATCH_INDEPENDENT, DEFAULT_QUANTIZATION, QuantizeMode, inference_mode_for, resolve_device
from carousel.model.quantization import quantize
from carousel.model.search import SearchConfig
from carousel.model.shortlist import Shortlist, load_shortlist
from carousel.model.translator import Translator, check_channel_direction

ChannelLoading = Literal["tuned", "named", "none"]  # which channel model `load_translator` loads

__all__ = ["load_translator", "ModelLoadError", "DEFAULT_QUANTIZATION", "QuantizeMode", "ChannelLoading", "card_shortlist",
           "load_channel", "SharedWeights"]


class SharedWeights:
    """Model directories loaded once and shared by every translator built on them in one process.

    A model's confidence needs the reverse direction's model, which a server also serves: without
    sharing, a process that translates both directions holds each model's weights twice (a service
    batch process loads general-es-en, general-en-es and the reverse of each). Translation never changes
    weights, so translators with different settings can share one loaded model. Give one `SharedWeights`
    to the `load_translator` calls of one loading thread, in a process that only translates (not tuning:
    `set_member_weights` changes an ensemble's weights) and whose model files do not change while it runs."""

    def __init__(self):
        self._loaded: dict[tuple[Path, str, str], LoadedModel] = {}

    def load(self, directory: Path, mode: str, device) -> LoadedModel:
        """The model in `directory`, its weights in inference precision `mode` on `device`, loaded once."""
        key = (Path(directory).resolve(), mode, str(device))
        if key not in self._loaded:
            self._loaded[key] = _load_for_inference(directory, mode, device)
        return self._loaded[key]

    def __len__(self) -> int:
        return len(self._loaded)


def _load_for_inference(directory: Path, mode: str, device) -> LoadedModel:
    loaded = load_model_dir(directory)
    try:
        loaded.model = quantize(loaded.model, mode).to(device)
    except ValueError as error:  # no quantized engine in this PyTorch build
        raise ModelLoadError(str(error)) from None
    return loaded


def load_translator(
    directory: Path,
    quantization: str = DEFAULT_QUANTIZATION,
    search: SearchConfig | None = None,
    channel: ChannelLoading | None = None,
    device: str = "auto",
    confidence: bool | None = None,
    shared: SharedWeights | None = None,
) -> Translator:
    """The one way to load a model directory for translation; every problem is a `ModelLoadError`.

    The weights are put in `quantization` precision (model/quantization.py; int8 becomes bf16 on a GPU)
    on `device` ("auto": a CUDA GPU where one is visible). `channel` says which reverse-direction model
    the card's `decoding.channel` loads: "tuned" when its tuned weight is not 0, "named" whenever the card
    names one, "none" never; by default "named" where `search` asks for a channel weight, else "tuned".
    With `search`, settings the model cannot honour (a channel weight without a channel model) are refused.
    With `confidence`, a calibration the card records (`carousel calibrate`) is loaded with its reverse model;
    by default only where `search` asks for confidences (the reverse model costs memory and load time).
    With `shared`, this model and the reverse models it needs are taken from (and added to) those loaded
    before in this process.
    """
    try:
        target = resolve_device(device)
    except ValueError as error:
        raise ModelLoadError(str(error)) from None
    if channel is None:
        channel = "named" if search is not None and search.channel_weight else "tuned"
    mode = inference_mode_for(target, quantization)
    loaded = shared.load(directory, mode, target) if shared is not None else _load_for_inference(directory, mode, target)
    reverse = None
    if channel != "none":
        reverse = load_channel(loaded, quantization, even_if_off=channel == "named", device=str(target), shared=shared)
    translator = Translator.from_loaded(loaded, channel=reverse, device=target, shortlist=card_shortlist(loaded),
                                        shortlist_per_sentence=mode in BATCH_INDEPENDENT)
    if confidence is None:
        confidence = search is not None and search.return_confidence
    if confidence:
        load_confidence(translator, loaded, quantization, str(target), shared)
    if search is not None and search.return_confidence and not translator.has_confidence:
        raise ModelLoadError(f"{directory} has no confidence calibration: fit one with "
                             f"`carousel calibrate --model {directory} --reverse DIR`")
    if search is not None and search.channel_weight and translator.channel is None:
        raise ModelLoadError(f"a channel weight needs a channel model, and {directory} names none: "
                             f"choose one with `carousel tune --model {directory} --channel-model DIR --update-card`")
    return translator


def load_channel(loaded: LoadedModel, quantization: str, even_if_off: bool = False, device: str = "cpu",
                 shared: SharedWeights | None = None) -> "Translator | None":
    """The reverse-direction model named by the card, loaded like the model itself, or None.

    A channel weight tuned to 0 loads nothing unless `even_if_off`. The model must be the one the
    weight was tuned with: its checksums are compared with those `carousel tune` recorded."""
    settings = channel_settings(loaded.card)
    if settings is None or (settings[1] == 0 and not even_if_off):  # tuned to off: no need to load it
        return None
    card_path = loaded.directory / "card.json"
    retune = (f"re-tune its weight with `carousel tune --model {loaded.directory} --channel-model DIR --channel-only "
              "--update-card`")
    path = loaded.directory / settings[0]
    if not path.is_dir():
        raise ModelLoadError(f"{card_path}: decoding.channel.model {settings[0]!r} is not a "
                             f"model directory beside it ({path}); restore it, or {retune}")
    channel = load_translator(path, quantization, channel="none", device=device, confidence=False, shared=shared)
    check_channel_direction(loaded.src_lang, loaded.tgt_lang, channel, ModelLoadError)
    recorded = loaded.card["decoding"]["channel"].get("model_checksums")
    if recorded is not None and recorded != channel.card.get("checksums"):
        raise ModelLoadError(f"{card_path}: the channel model {path} has changed since its weight was tuned; {retune}")
    return channel


def load_confidence(translator: Translator, loaded: LoadedModel, quantization: str, device: str,
                    shared: SharedWeights | None = None) -> None:
    """Give `translator` the calibration its card records and the reverse model that calibration needs."""
    try:
        found = read_calibration(loaded.directory, loaded.card)
    except CalibrationError as error:
        raise ModelLoadError(str(error)) from None
    if found is None:
        return
    calibration, relative = found
    path = (loaded.directory / relative)
    refit = f"refit with `carousel calibrate --model {loaded.directory} --reverse DIR`"
    if not path.is_dir():
        raise ModelLoadError(f"{loaded.directory / 'card.json'}: confidence.reverse_model {relative!r} is not a "
                             f"model directory beside it ({path}); restore it, or {refit}")
    channel = translator.channel
    same = channel is not None and channel_settings(loaded.card) is not None \
        and (loaded.directory / channel_settings(loaded.card)[0]).resolve() == path.resolve()
    reverse = channel if same else load_translator(path, quantization, channel="none", device=device, confidence=False,
                                                   shared=shared)
    check_channel_direction(loaded.src_lang, loaded.tgt_lang, reverse, ModelLoadError)
    representation = calibration.representation
    if representation is not None and (representation.source_axes.shape[1], representation.output_axes.shape[1]) != (
            encoder_width(translator.model), encoder_width(reverse.model)):
        raise ModelLoadError(f"{loaded.directory}: the confidence representation was fitted on encoders of another "
                             f"size than these models'; {refit}")
    recorded = loaded.card["confidence"].get("reverse_checksums")
    if recorded is not None and recorded != reverse.card.get("checksums"):
        raise ModelLoadError(f"{path}: the reverse model has changed since the confidence was fitted; {refit}")
    translator.use_confidence(reverse, calibration)


def encoder_width(model) -> int:
    """The size of the encoder's top-layer states (both directions), as `mean_encoder_states` returns them."""
    return 2 * model.config.encoder_hidden


def card_shortlist(loaded: LoadedModel) -> Shortlist | None:
    """The lexical shortlist the card records (`carousel shortlist`), checked against its checksum."""
    entry = loaded.card.get("shortlist")
    if not entry:
        return None
    path = loaded.directory / entry["file"]
    if not path.is_file():
        raise ModelLoadError(f"{path} is missing: card.json records a shortlist; rebuild it with `carousel shortlist`")
    if sha256_file(path) != entry["sha256"]:
        raise ModelLoadError(f"{path} does not match the checksum card.json records for it")
    # Cards written before `whole_vocabulary_below` keep their lists for every sentence.
    return load_shortlist(path, int(entry.get("whole_vocabulary_below", 0)))
