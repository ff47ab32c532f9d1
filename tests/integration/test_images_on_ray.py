"""Images through the real parts: ingest with broken files quarantined, a CNN trained by
Ray Train under bf16 autocast that checkpoints and resumes, an ASHA search, the endpoint
answering base64 images (bad ones with a 422 naming the instance) and :explain, and a Siamese
network trained on some digits that verifies pairs of held-out ones, served from MLflow."""

from __future__ import annotations

import base64
import io
from pathlib import Path

import httpx
import numpy as np
import pytest
import torch
from PIL import Image
from ray import serve
from ray.data.dataset import MaterializedDataset
from safetensors.torch import load_file

from components.artifacts.bundle import load_bundle, save_bundle
from components.artifacts.checkpoint_files import read_state
from components.artifacts.registry import register_bundle
from components.artifacts.tracking import log_trial, start_run
from components.config import ImageConfig, SplitConfig, TuningConfig
from components.data.image_preparation import prepare_images
from components.data import ray_decoding
from components.data.images import (
    ImageSpec, InvalidImage, encode_png, list_image_sources, read_landed_image_source, write_bundled_images,
)
from components.data.lake import Lake
from components.data.streaming import FileRows, IngestStream
from components.data.silver import SilverSnapshot, split_arrays, write_silver
from components.data.sources import file_hash
from components.evaluation.outcome import best_of
from components.evaluation.scoring import score
from components.models import build
import components.training.ray_session as sessions
from components.training.loop import loop_config
from components.training.ray_session import SilverInputs, make_trainer, training_outcome
from components.tuning.tuner import run_search, trial_outcomes
from serving.app import ServedModel, start

NAME = "digits-cnn"
SIAMESE = "digits-siamese"
SPLIT = SplitConfig(ratios={"train": 0.7, "val": 0.15, "test": 0.15}, stratify=True, seed=3)
MODEL = {"kind": "cnn", "params": {"arch": "lenet5"}}


def _ingest(lake: Lake, landing: Path, fmt: str) -> None:
    """What the ingest flow does: the sources whose bytes are new, in one micro-batch."""
    stream = IngestStream(lake, "ingest")
    seen, files = stream.ingested_hashes(), []
    for path in list_image_sources(landing, fmt):
        if (content_hash := file_hash(path)) not in seen:
            good, bad = read_landed_image_source(path, landing, fmt, ImageSpec(max_bytes=4000))
            files.append(FileRows(str(path.relative_to(landing)), content_hash, good, bad))
    if files:
        stream.commit(files)


def test_image_folder_ingest_quarantines_broken_files_and_keeps_the_rest(workdir: Path):
    landing = workdir / "landing" / "folder"
    pixels = (np.arange(64, dtype=np.uint8).reshape(8, 8) * 3)
    for label in ("0", "1"):
        (landing / label).mkdir(parents=True)
        for i in range(3):  # distinct bytes: the same content under another name is ingested once
            (landing / label / f"{i}.png").write_bytes(encode_png(pixels + i + 10 * int(label)))
    good = encode_png(pixels)
    (landing / "0" / "truncated.png").write_bytes(good[:-16])  # cut inside the pixel data
    (landing / "0" / "notes.png").write_bytes(b"not an image at all")
    rgba = io.BytesIO()
    Image.new("RGBA", (8, 8)).save(rgba, format="PNG")
    (landing / "1" / "rgba.png").write_bytes(rgba.getvalue())
    (landing / "1" / "huge.png").write_bytes(encode_png(np.random.default_rng(0).integers(0, 255, (64, 64), np.uint8)))

    lake = Lake(str(workdir / "lake" / "folder"))
    _ingest(lake, landing, "image_folder")
    bronze = lake.read("bronze")
    assert bronze.height == 6 and sorted(set(bronze["label"])) == ["0", "1"]
    assert set(bronze["height"]) == {8} and set(bronze["channels"]) == {1}
    reasons = dict(zip(lake.read("quarantine")["_source_file"], lake.read("quarantine")["_reason"]))
    assert set(reasons) == {"0/truncated.png", "0/notes.png", "1/rgba.png", "1/huge.png"}
    assert "truncated" in reasons["0/truncated.png"]
    assert "cannot decode" in reasons["0/notes.png"]
    assert "mode 'RGBA'" in reasons["1/rgba.png"]
    assert "max_bytes" in reasons["1/huge.png"] or "4000" in reasons["1/huge.png"]

    version = lake.version("bronze")
    _ingest(lake, landing, "image_folder")  # the same files again: nothing new
    assert lake.version("bronze") == version and lake.read("bronze").height == 6


@pytest.fixture(scope="module")
def digits(workdir: Path) -> SilverSnapshot:
    """scikit-learn's 1,797 8x8 digits landed as an .npz, ingested, split and preprocessed."""
    landing = workdir / "landing" / "digits"
    write_bundled_images("digits", landing)
    lake = Lake(str(workdir / "lake" / "digits"))
    _ingest(lake, landing, "npz")
    frames, state = prepare_images(lake.read("bronze"), SPLIT, ImageConfig(augment=[{"type": "noise", "std": 0.05}]))
    return write_silver(lake, frames, state, lake.version("bronze"))


def _config(snapshot: SilverSnapshot, epochs: int, **training) -> dict:
    settings = {"epochs": epochs, "batch_size": 64, "optimizer": {"name": "adam", "lr": 0.01}, **training}
    return loop_config(MODEL, settings, snapshot.features.info, [{"type": "noise", "std": 0.05}])


def test_a_cnn_trains_under_bf16_with_adversarial_examples_checkpoints_and_resumes(
    ray_session, digits: SilverSnapshot, workdir: Path
):
    """Ray Train workers run bf16 autocast and training.adversarial (FGSM on half of each batch,
    in pixel units: DataInfo carries the statistics) together, and resume after a stop."""
    inputs = SilverInputs.of({s: digits.tables[s] for s in ("train", "val")}, digits.features)
    assert digits.features.info.input_shape == (1, 8, 8) and digits.features.out_features == 10
    storage = str(workdir / "runs")
    adversarial = {"attack": "fgsm", "eps": 0.05, "ratio": 0.5}

    def fit(epochs: int):
        config = _config(digits, epochs, precision="bf16", adversarial=adversarial)
        trainer = make_trainer(config, inputs.datasets(), num_workers=1,
                               use_gpu=False, storage_path=storage, name="digits-bf16")
        return training_outcome(trainer.fit(), "digits-bf16")

    first = fit(2)
    assert [row["epoch"] for row in first.history] == [0, 1]
    steps = first.history[-1]["step"]
    assert steps == 2 * int(np.ceil(digits_rows(digits, "train") / 64))
    second = fit(4)  # same run: resumes after epoch 1
    assert [row["epoch"] for row in second.history] == [2, 3]
    state = read_state(second.checkpoint)
    assert state["epoch"] == 3 and state["global_step"] == 2 * steps
    assert state["spec"]["params"]["in_channels"] == 1 and state["spec"]["params"]["height"] == 8
    assert second.metrics["val_accuracy"] > 0.85


def digits_rows(snapshot: SilverSnapshot, split: str) -> int:
    return len(split_arrays(snapshot, split)[1])


def test_images_decode_in_ray_tasks_into_the_pixels_decoding_in_process_gives(
    ray_session, digits: SilverSnapshot, workdir: Path, monkeypatch
):
    """Silver's pixels come from Ray tasks over chunks of the encoded images, in their order;
    a broken image in a later chunk raises its own error, naming its place in the whole list."""
    monkeypatch.setattr(ray_decoding, "CHUNK", 100)  # 1,797 digits: 18 tasks, two in flight at a time
    bronze = Lake(str(workdir / "lake" / "digits")).read("bronze")
    split = SplitConfig(ratios={"train": 0.7, "val": 0.15, "test": 0.15}, stratify=True, seed=3)
    on_ray, state = prepare_images(bronze, split, ImageConfig(), decode=ray_decoding.pixels_on_ray)
    in_process, same = prepare_images(bronze, split, ImageConfig())
    assert state.to_dict() == same.to_dict()
    for name in ("train", "val", "test"):
        assert on_ray[name].equals(in_process[name])
    images = bronze["image"].to_list()
    images[250] = images[250][:40]  # truncated
    with pytest.raises(InvalidImage, match=r"images\[250\]"):
        ray_decoding.pixels_on_ray(state.processor, images)


def test_a_small_image_split_is_read_once_and_a_large_one_streams_the_same_batches(
    ray_session, digits: SilverSnapshot, monkeypatch
):
    """Silver holds decoded pixels, so a split's packed size is known before reading it:
    under the cache limit it is read and packed once into the object store, over it it
    streams from Delta every pass; both give the inputs `split_arrays` reads in process."""
    inputs = SilverInputs.of({"train": digits.tables["train"]}, digits.features)
    cached = inputs.datasets()["train"]
    packed = digits_rows(digits, "train") * digits.features.packed_row_bytes
    monkeypatch.setattr(sessions, "CACHE_BELOW_BYTES", packed - 1)
    streamed = inputs.datasets()["train"]
    assert isinstance(cached, MaterializedDataset) and not isinstance(streamed, MaterializedDataset)

    def total(ds) -> float:
        return sum(float(b["x"].double().sum()) for b in ds.iter_torch_batches(batch_size=256))

    x, _ = split_arrays(digits, "train")
    assert total(cached) == pytest.approx(total(streamed)) == pytest.approx(float(x.astype(np.float64).sum()))


@pytest.fixture(scope="module")
def searched(ray_session, digits: SilverSnapshot, profile):
    tuning = TuningConfig.model_validate({
        "num_samples": 2, "grace_period": 1, "metric": "val_accuracy", "mode": "max",
        "space": {"training.optimizer.lr": {"choice": [0.003, 0.01]}},
    })
    inputs = SilverInputs.of({s: digits.tables[s] for s in ("train", "val")}, digits.features)
    grid = run_search(_config(digits, 3), inputs, tuning, storage_path=profile.runs, name="digits-search")
    return trial_outcomes(grid, list(tuning.space))


def test_a_search_over_images_picks_the_better_rate(searched):
    assert len(searched) == 2 and all(o.error is None for o in searched)
    best = best_of(searched, "val_accuracy", "max")
    assert best.value("val_accuracy") == max(o.value("val_accuracy") for o in searched) > 0.8


@pytest.fixture(scope="module")
def siamese(digits: SilverSnapshot, workdir: Path):
    """A Siamese network trained on the digits 0-6; 7, 8 and 9 held out and shared between
    val (which picks the threshold) and test. The loop runs in this process (Ray Train runs
    the same loop: mnist_siamese.yaml through `make test-examples`), to keep make test short.
    (snapshot, last checkpoint, its report, test report, untrained accuracy)"""
    from components.evaluation.report import verification_report
    from components.evaluation.verification import embed, label_verification
    from components.training.loop import train_model
    from tests.unit.test_loop import MemorySession

    bronze = Lake(str(workdir / "lake" / "digits")).read("bronze")
    split = SplitConfig(method="classes", held_out=[7, 8, 9], ratios={"train": 0.5, "val": 0.25, "test": 0.25})
    frames, state = prepare_images(bronze, split, ImageConfig())
    lake = Lake(str(workdir / "lake" / "digits-siamese"))
    snapshot = write_silver(lake, frames, state, 0)
    config = loop_config({"kind": "siamese", "params": {"embedding_dim": 16, "arch": "layers"}},
                         {"epochs": 4, "batch_size": 64, "optimizer": {"name": "adam", "lr": 0.003}}, state.info)
    session = MemorySession(*split_arrays(snapshot, "train"))
    session.data["val"] = split_arrays(snapshot, "val")
    train_model(config, session)
    checkpoint, metrics = session.checkpoints[-1], session.reports[-1]
    model = build(config["model"])
    model.load_state_dict(load_file(f"{checkpoint}/model.safetensors"))
    x, y = split_arrays(snapshot, "test")
    torch.manual_seed(0)
    untrained = label_verification(embed(build(config["model"]), x), y, threshold=None)["accuracy"]
    return snapshot, checkpoint, metrics, verification_report(model, x, y, metrics["val_threshold"]), untrained


def test_a_siamese_network_verifies_pairs_of_digits_it_never_trained_on(siamese):
    snapshot, _, metrics, report, untrained = siamese
    assert set(split_arrays(snapshot, "train")[1]) == set(range(7))
    assert set(split_arrays(snapshot, "test")[1]) == set(split_arrays(snapshot, "val")[1]) == {7, 8, 9}
    # at the threshold chosen on validation pairs, against an untrained network of the same
    # spec at its own best threshold on these test pairs (measured: 0.73 against 0.60)
    assert report.metrics["test_accuracy"] > untrained + 0.05, (report.metrics, untrained)
    assert 0 < metrics["val_threshold"] < 2  # unit-length embeddings: distances in [0, 2]
    assert Image.open(io.BytesIO(report.images["distances.png"])).format == "PNG"


@pytest.fixture(scope="module")
def endpoint(searched, siamese, digits: SilverSnapshot, tracking, profile, workdir: Path):
    best = best_of(searched, "val_accuracy", "max")
    run_id = log_trial(tracking, start_run(tracking, "digits-serve", {}), best)
    bundle_dir = save_bundle(workdir / "bundle-digits", checkpoint_dir=best.checkpoint, features=digits.features,
                             metrics={"val_accuracy": best.value("val_accuracy")}, lineage=digits.lineage)
    register_bundle(NAME, bundle_dir, run_id=run_id, metric="val_accuracy", value=0.0, mode="max")
    snapshot, checkpoint, metrics, *_ = siamese
    siamese_dir = save_bundle(workdir / "bundle-siamese", checkpoint_dir=checkpoint, features=snapshot.features,
                              metrics=metrics, lineage=snapshot.lineage)
    register_bundle(SIAMESE, siamese_dir, run_id=start_run(tracking, "siamese-serve", {}), metric="val_accuracy",
                    value=0.0, mode="max")
    served = [ServedModel(name=NAME, max_instances=16), ServedModel(name=SIAMESE, max_instances=16)]
    url = start(served, profile.mlflow_tracking_uri, "127.0.0.1", 8322)
    yield url, load_bundle(bundle_dir), load_bundle(siamese_dir)
    serve.shutdown()


def _b64(data: bytes) -> dict[str, str]:
    return {"b64": base64.b64encode(data).decode()}


def test_base64_images_over_http_answer_like_the_bundle(endpoint, digits: SilverSnapshot, workdir: Path):
    url, bundle, _ = endpoint
    bronze_images = Lake(str(workdir / "lake" / "digits")).read("bronze")["image"].to_list()[:5]
    answer = httpx.post(f"{url}/v1/models/{NAME}:predict", json={"instances": [_b64(b) for b in bronze_images]},
                        timeout=60).json()
    assert [p["label"] for p in answer["predictions"]] == [p["label"] for p in bundle.predict(bronze_images)]
    # the same image as a nested pixel array gets the same answer
    pixels = np.asarray(Image.open(io.BytesIO(bronze_images[0]))).tolist()
    as_array = httpx.post(f"{url}/v1/models/{NAME}:predict", json={"instances": [pixels]}, timeout=60).json()
    assert as_array["predictions"][0] == answer["predictions"][0]
    # the served model's test accuracy is what scoring the bundle gives
    x, y = split_arrays(digits, "test")
    assert score(bundle.model, x, y, "classification", 10)["accuracy"] > 0.8


@pytest.mark.parametrize(("instance", "field", "says"), [
    ({"b64": "%%%"}, "instances[1].b64", "not valid base64"),
    ({"b64": base64.b64encode(b"hello").decode()}, "instances[1].b64", "cannot decode"),
    ([[300, 0], [0, 0]], "instances[1]", "0 to 255"),
    ([[[1, 2, 3, 4]]], "instances[1]", "C 1 or 3"),
    ("an image", "instances[1]", "must be"),
])
def test_bad_images_get_a_422_naming_the_instance(endpoint, instance, field, says):
    url, *_ = endpoint
    good = [[0] * 8] * 8
    response = httpx.post(f"{url}/v1/models/{NAME}:predict", json={"instances": [good, instance]}, timeout=30)
    assert response.status_code == 422
    body = response.json()
    assert body["field"] == field and says in body["error"]
    assert httpx.get(f"{url}/healthz").status_code == 200  # the server stays up


def test_explain_answers_a_grad_cam_heatmap_per_image(endpoint):
    url, *_ = endpoint
    digit = np.zeros((8, 8), dtype=np.uint8)
    digit[1:7, 3:5] = 255  # a "1"
    response = httpx.post(f"{url}/v1/models/{NAME}:explain", json={"instances": [_b64(encode_png(digit))]}, timeout=60)
    assert response.status_code == 200, response.text
    explanation = response.json()["explanations"][0]
    assert explanation["method"] == "grad_cam" and explanation["layer"] == "features"
    heatmap = np.asarray(explanation["heatmap"])
    assert heatmap.shape == (8, 8) and heatmap.max() == pytest.approx(1.0) and heatmap.min() >= 0.0  # scaled per image
    png = Image.open(io.BytesIO(base64.b64decode(explanation["heatmap_png"])))
    assert png.size == (8, 8)


def test_the_siamese_endpoint_answers_pairs_like_its_bundle(endpoint, workdir: Path):
    url, _, bundle = endpoint
    bronze = Lake(str(workdir / "lake" / "digits")).read("bronze")
    sevens = bronze.filter(bronze["label"] == "7")["image"].to_list()[:2]
    eight = bronze.filter(bronze["label"] == "8")["image"].to_list()[0]
    pairs = [(sevens[0], sevens[0]), (sevens[0], sevens[1]), (sevens[0], eight)]
    body = {"instances": [{"a": _b64(a), "b": _b64(b)} for a, b in pairs]}
    answer = httpx.post(f"{url}/v1/models/{SIAMESE}:predict", json=body, timeout=60)
    assert answer.status_code == 200, answer.text
    predictions = answer.json()["predictions"]
    decoded = [(np.asarray(Image.open(io.BytesIO(a)))[:, :, None], np.asarray(Image.open(io.BytesIO(b)))[:, :, None])
               for a, b in pairs]
    expected = bundle.predict(decoded)
    assert [p["distance"] for p in predictions] == pytest.approx([e["distance"] for e in expected], abs=1e-5)
    assert [p["same"] for p in predictions] == [e["same"] for e in expected]
    assert predictions[0]["distance"] == pytest.approx(0.0, abs=1e-5) and predictions[0]["same"]
    assert predictions[0]["threshold"] == pytest.approx(bundle.metrics["val_threshold"])
    assert httpx.get(f"{url}/v1/models/{SIAMESE}").json()["task"] == "verification"
    # a lone image is not a pair; :explain is for classifiers: both 422, naming what is wrong
    lone = httpx.post(f"{url}/v1/models/{SIAMESE}:predict", json={"instances": [_b64(eight)]}, timeout=30)
    assert lone.status_code == 422 and lone.json()["field"] == "instances[0]"
    bad = httpx.post(f"{url}/v1/models/{SIAMESE}:predict",
                     json={"instances": [{"a": _b64(eight), "b": {"b64": "%%"}}]}, timeout=30)
    assert bad.status_code == 422 and bad.json()["field"] == "instances[0].b.b64"
    explain = httpx.post(f"{url}/v1/models/{SIAMESE}:explain", json={"instances": [_b64(eight)]}, timeout=30)
    assert explain.status_code == 422 and "explains image classifiers" in explain.json()["error"]


def _searched_bundle(searched, digits: SilverSnapshot, workdir: Path):
    best = best_of(searched, "val_accuracy", "max")
    directory = save_bundle(workdir / "bundle-digits-evaluated", checkpoint_dir=best.checkpoint,
                            features=digits.features, metrics={}, lineage=digits.lineage)
    return load_bundle(directory)


def test_the_evaluation_report_of_the_searched_cnn(searched, digits: SilverSnapshot, workdir: Path):
    """What build_bundle adds for an image model: the visual PNGs and accuracy under attack, in
    pixel units through the fitted processor."""
    from components.config import EvaluationConfig
    from components.evaluation.report import evaluation_report
    from components.evaluation.robustness import pixel_statistics

    bundle = _searched_bundle(searched, digits, workdir)
    x, y = split_arrays(digits, "test")
    settings = EvaluationConfig(attacks=["fgsm", "pgd"], eps=[0.1, 0.2], pgd_steps=10, activation_max_steps=10,
                                activation_max_classes=[0, 7])
    classes = [str(c) for c in digits.features.labels.classes_]
    report = evaluation_report(bundle.model, x, y, settings, classes=classes, pixels=pixel_statistics(digits.features.info))
    # LeNet-5's head follows dense layers, not global average pooling: no CAM
    assert set(report.images) == {"filters.png", "activations.png", "saliency.png", "grad_cam.png",
                                  "activation_max.png"}
    assert all(Image.open(io.BytesIO(png)).format == "PNG" for png in report.images.values())
    assert sorted(report.metrics) == ["test_fgsm_accuracy.eps_0.1", "test_fgsm_accuracy.eps_0.2",
                                      "test_pgd_accuracy.eps_0.1", "test_pgd_accuracy.eps_0.2"]
    clean = score(bundle.model, x, y, "classification", 10)["accuracy"]
    for eps in ("0.1", "0.2"):
        fgsm, pgd = report.metrics[f"test_fgsm_accuracy.eps_{eps}"], report.metrics[f"test_pgd_accuracy.eps_{eps}"]
        assert fgsm < clean and pgd <= fgsm, report.metrics
    assert report.metrics["test_fgsm_accuracy.eps_0.2"] <= report.metrics["test_fgsm_accuracy.eps_0.1"]


def test_a_version_that_fails_a_gate_is_registered_without_the_alias(searched, digits: SilverSnapshot,
                                                                     tracking, workdir: Path):
    from mlflow import MlflowClient

    from components.artifacts.registry import champion_version, check_gates
    from components.config import RegistryConfig

    best = best_of(searched, "val_accuracy", "max")
    bundle = _searched_bundle(searched, digits, workdir)
    x, y = split_arrays(digits, "test")
    metrics = {"val_accuracy": best.value("val_accuracy"), **{
        f"test_{k}": v for k, v in score(bundle.model, x, y, "classification", 10).items()}}
    gates = check_gates(RegistryConfig.model_validate(
        {"gates": {"test_accuracy": {"min": 1.01}, "val_accuracy": {"min": 0.5}}}).gates, metrics)
    run_id = log_trial(tracking, start_run(tracking, "digits-gated", {}), best)
    blocked = register_bundle("digits-gated", workdir / "bundle-digits-evaluated", run_id=run_id,
                              metric="val_accuracy", value=metrics["val_accuracy"], mode="max", gates=gates)
    assert not blocked.champion and blocked.previous_champion is None
    assert [g.metric for g in blocked.failed_gates] == ["test_accuracy"]
    assert champion_version("digits-gated") is None  # registered, but no alias moved
    tag = MlflowClient().get_model_version("digits-gated", blocked.version).tags["gates"]
    assert tag.startswith("test_accuracy >= 1.01 failed by ")

