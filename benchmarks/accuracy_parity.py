"""Test accuracy (R² for regression) of every scikit-learn-backed kind through the project
next to the same scikit-learn estimator used directly, on every bundled dataset.

Project side, as a pipeline runs it, without Ray (what is checked is the model
integration, not the cluster: Ray only decides where the same `fit` call runs): the bundled
dataset is checked (`check_rows`) and committed to a throwaway Delta lake as bronze,
`prepare` splits it (seeded, stratified for classification) and fits the preprocessing on
the train rows, `write_silver` writes the silver tables, `read_arrays` reads the train and
test arrays back (float32), and the model is `components.models.build` of the spec that
`loop_config` gives a pipeline, fitted on the train arrays (ensembles as `fit_ensemble`
builds them, fitted in process) and scored on the test arrays with
`components.evaluation.scoring.score`.

Direct side: the same raw train and test rows (`raw_split`), scikit-learn's StandardScaler
fitted on the train rows (float64), and the scikit-learn (or XGBoost) estimator the kind
stands for, constructed by hand with the same hyperparameters; scored with
`sklearn.metrics`.

    .venv/bin/python benchmarks/accuracy_parity.py [--datasets iris wine ...] [--seed 0] [--no-write]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import xgboost
from sklearn.ensemble import (
    AdaBoostClassifier,
    AdaBoostRegressor,
    BaggingClassifier,
    BaggingRegressor,
    GradientBoostingClassifier,
    GradientBoostingRegressor,
    RandomForestClassifier,
    RandomForestRegressor,
    StackingClassifier,
    StackingRegressor,
    VotingClassifier,
    VotingRegressor,
)
from sklearn.exceptions import ConvergenceWarning
from sklearn.linear_model import LinearRegression, LogisticRegression
from sklearn.metrics import accuracy_score, r2_score
from sklearn.model_selection import KFold, StratifiedKFold
from sklearn.naive_bayes import GaussianNB
from sklearn.neighbors import KNeighborsClassifier, KNeighborsRegressor
from sklearn.preprocessing import StandardScaler
from sklearn.tree import DecisionTreeClassifier, DecisionTreeRegressor
from xgboost import XGBClassifier, XGBRegressor

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import table, write_section  # noqa: E402

from components.artifacts.xgboost_io import as_estimator  # noqa: E402
from components.config import PipelineConfig  # noqa: E402
from components.data.bundled import bundled_frame, bundled_schema  # noqa: E402
from components.data.lake import Lake  # noqa: E402
from components.data.preparation import FeatureState, prepare, raw_split  # noqa: E402
from components.data.schema import check_rows  # noqa: E402
from components.data.silver import SilverSnapshot, read_arrays, write_silver  # noqa: E402
from components.evaluation.scoring import score  # noqa: E402
from components.models import build  # noqa: E402
from components.models.boosting import config_from_spec, train_params  # noqa: E402
from components.data.modalities import tabular_info  # noqa: E402
from components.models.outputs import predict_arrays  # noqa: E402
from components.training.loop import loop_config  # noqa: E402

DATASETS = {"iris": "classification", "wine": "classification", "breast_cancer": "classification",
            "digits": "classification", "diabetes": "regression"}
SPLIT_RATIOS = {"train": 0.6, "val": 0.2, "test": 0.2}
# Regression: float32 inputs on the project side against float64 here move R² by ~1e-6
# for the linear model and not at all for trees; 1e-3 is far above that and far below a
# real modelling difference.
R2_TOLERANCE = 1e-3
SEED = 0  # every random_state, on both sides


# ---------------------------------------------------------------------------- the kinds


@dataclass(frozen=True)
class Case:
    """One row: a project spec and the estimator that stands for it in scikit-learn."""

    label: str
    model: dict[str, Any]  # {kind, params} as in a pipeline config
    direct: Callable[[str], Any]  # task -> unfitted scikit-learn / XGBoost estimator
    tasks: tuple[str, ...] = ("classification", "regression")
    xgboost_train: bool = False  # project side through xgboost.train, as the Ray Train worker boosts
    exact: bool = True  # False: the direct side is a stand-in, not the same model (flagged)
    note: str = ""


def _per_task(classifier: Callable[[], Any], regressor: Callable[[], Any]) -> Callable[[str], Any]:
    return lambda task: classifier() if task == "classification" else regressor()


def _members(task: str) -> list[dict[str, Any]]:
    first = "logistic_regression" if task == "classification" else "linear_regression"
    return [{"kind": first}, {"kind": "random_forest"}, {"kind": "knn"}]


def _direct_members(task: str) -> list[tuple[str, Any]]:
    if task == "classification":
        return [("logistic_regression", LogisticRegression()),
                ("random_forest", RandomForestClassifier(random_state=SEED)), ("knn", KNeighborsClassifier(5))]
    # max_features "sqrt": the project's random_forest default (scikit-learn's regressor uses 1.0)
    return [("linear_regression", LinearRegression()),
            ("random_forest", RandomForestRegressor(max_features="sqrt", random_state=SEED)),
            ("knn", KNeighborsRegressor(5))]


def _folds(task: str) -> StratifiedKFold | KFold:
    # the project's Ensemble._folds: stratified when every class has >= folds rows (true here)
    return StratifiedKFold(5, shuffle=True, random_state=SEED) if task == "classification" else KFold(
        5, shuffle=True, random_state=SEED)


def _voting(task: str, voting: str = "soft", weights: list[float] | None = None) -> Any:
    if task == "classification":
        return VotingClassifier(_direct_members(task), voting=voting, weights=weights)
    return VotingRegressor(_direct_members(task), weights=weights)


def _stacking(task: str) -> Any:
    # the project's default meta-learner is its logistic / linear regression kind
    if task == "classification":
        return StackingClassifier(_direct_members(task), final_estimator=LogisticRegression(), cv=_folds(task),
                                  stack_method="predict_proba")
    return StackingRegressor(_direct_members(task), final_estimator=LinearRegression(), cv=_folds(task))


def _xgb(task: str) -> Any:
    model = XGBClassifier if task == "classification" else XGBRegressor
    return model(n_estimators=100, max_depth=6, learning_rate=0.3, subsample=1.0, colsample_bytree=1.0,
                 min_child_weight=1.0, reg_lambda=1.0, reg_alpha=0.0, tree_method="hist", max_bin=256,
                 random_state=SEED)


def cases() -> list[Case]:
    ensemble = "ensemble"
    return [
        Case("knn", {"kind": "knn"}, _per_task(lambda: KNeighborsClassifier(5), lambda: KNeighborsRegressor(5))),
        Case("linear_regression", {"kind": "linear_regression"}, lambda task: LinearRegression(), ("regression",)),
        Case("logistic_regression", {"kind": "logistic_regression"}, lambda task: LogisticRegression(),
             ("classification",)),
        Case("naive_bayes", {"kind": "naive_bayes"}, lambda task: GaussianNB(), ("classification",)),
        Case("decision_tree", {"kind": "decision_tree"},
             _per_task(lambda: DecisionTreeClassifier(random_state=SEED),
                       lambda: DecisionTreeRegressor(random_state=SEED))),
        Case("random_forest", {"kind": "random_forest"},
             _per_task(lambda: RandomForestClassifier(random_state=SEED),
                       lambda: RandomForestRegressor(max_features="sqrt", random_state=SEED))),
        Case("bagging", {"kind": "bagging"},
             _per_task(lambda: BaggingClassifier(DecisionTreeClassifier(random_state=SEED), random_state=SEED),
                       lambda: BaggingRegressor(DecisionTreeRegressor(random_state=SEED), random_state=SEED))),
        # the project's base is a stump for both tasks (scikit-learn's regressor default is depth 3)
        Case("adaboost", {"kind": "adaboost"},
             _per_task(
                 lambda: AdaBoostClassifier(DecisionTreeClassifier(max_depth=1, random_state=SEED), random_state=SEED),
                 lambda: AdaBoostRegressor(DecisionTreeRegressor(max_depth=1, random_state=SEED), random_state=SEED),
             )),
        Case("gradient_boosting", {"kind": "gradient_boosting"},
             _per_task(lambda: GradientBoostingClassifier(random_state=SEED),
                       lambda: GradientBoostingRegressor(random_state=SEED))),
        Case("xgboost", {"kind": "xgboost"}, _xgb),
        Case("xgboost (xgboost.train)", {"kind": "xgboost"}, _xgb, xgboost_train=True,
             note="project side: `xgboost.train(train_params(...))` on a DMatrix, the call the Ray Train worker makes"),
        Case("ensemble voting soft", {"kind": ensemble, "params": {"method": "voting", "voting": "soft"}},
             _voting),
        Case("ensemble voting hard", {"kind": ensemble, "params": {"method": "voting", "voting": "hard"}},
             lambda task: _voting(task, "hard"), ("classification",)),
        Case("ensemble weighted", {"kind": ensemble, "params": {"method": "weighted"}}, _voting, exact=False,
             note="no scikit-learn equivalent (greedy selection); direct side: equal-weight (soft) voting"),
        Case("ensemble weighted, learned weights", {"kind": ensemble, "params": {"method": "weighted"}}, _voting,
             note="direct side: (soft) voting with the weights the project learned"),
        Case("ensemble stacking", {"kind": ensemble, "params": {"method": "stacking"}}, _stacking),
    ]


# ---------------------------------------------------------------------------- the data


@dataclass
class Data:
    task: str
    features: FeatureState
    project: dict[str, tuple[np.ndarray, np.ndarray]]  # split -> silver (x float32, y) from Delta
    direct: dict[str, tuple[np.ndarray, np.ndarray]]  # split -> scaled raw (x float64, y raw target)

    @property
    def n_test(self) -> int:
        return len(self.direct["test"][1])


def pipeline_config(dataset: str, model: dict[str, Any], seed: int) -> PipelineConfig:
    task = DATASETS[dataset]
    return PipelineConfig.model_validate({
        "name": f"parity-{dataset.replace('_', '-')}",
        "source": {"format": "sklearn", "dataset": dataset},
        "schema": {"target": "target", "task": task, "columns": bundled_schema(dataset)},
        "split": {"ratios": SPLIT_RATIOS, "stratify": task == "classification", "seed": seed},
        "model": model,
        "serving": {"name": "parity"},
    })


def load(dataset: str, seed: int, root: Path) -> Data:
    """Both sides' train and test rows: the same raw rows, split once by the project."""
    config = pipeline_config(dataset, {"kind": "knn"}, seed)
    schema = config.schema_
    lake = Lake(str(root / dataset))
    good, bad = check_rows(bundled_frame(dataset), schema, f"{dataset}.csv")
    IngestStream(lake, "ingest").commit([FileRows(f"{dataset}.csv", "0" * 64, good, bad)])
    bronze = lake.read("bronze")
    frames, features = prepare(bronze, schema, config.split, config.preprocessing)
    snapshot: SilverSnapshot = write_silver(lake, frames, features, lake.version("bronze"))
    project = {s: read_arrays(*snapshot.tables[s], features.columns, features.label_dtype) for s in ("train", "test")}

    raw = {s: raw_split(bronze, schema, config.split, s) for s in ("train", "test")}
    scaler = StandardScaler().fit(raw["train"].select(schema.features).to_numpy().astype(np.float64))
    direct = {
        s: (scaler.transform(raw[s].select(schema.features).to_numpy().astype(np.float64)),
            raw[s][schema.target].to_numpy())
        for s in ("train", "test")
    }
    for s in ("train", "test"):  # the same rows in the same order on both sides
        y_project, y_direct = project[s][1], direct[s][1]
        decoded = features.labels.decode(y_project) if features.labels is not None else y_project
        assert np.allclose(np.asarray(decoded, dtype=np.float64), y_direct.astype(np.float64), atol=1e-4), s
        assert np.allclose(project[s][0], direct[s][0], atol=1e-4), s
    return Data(config.schema_.task, features, project, direct)


# ---------------------------------------------------------------------------- both sides


@dataclass
class Row:
    dataset: str
    case: Case
    project: float
    direct: float
    differing: int  # test rows whose predicted label differs (classification)
    max_abs_diff: float  # largest |Δ prediction| (regression)
    n_test: int
    seconds: tuple[float, float]
    weights: list[float] | None = None

    @property
    def diff(self) -> float:
        return self.project - self.direct

    @property
    def tolerance(self) -> float:
        # classification: one test row on a decision boundary, moved by float32 vs float64 inputs
        return 1.0 / self.n_test + 1e-12 if self.task == "classification" else R2_TOLERANCE

    @property
    def task(self) -> str:
        return DATASETS[self.dataset]

    @property
    def within(self) -> bool:
        return abs(self.diff) <= self.tolerance


def fit_project(case: Case, data: Data, seed: int, dataset: str) -> tuple[Any, list[float] | None]:
    """The project's model for `case`, fitted as the pipeline fits it (in process)."""
    spec = dict(case.model)
    if spec["kind"] == "ensemble":
        spec = {"kind": "ensemble", "params": {**spec.get("params", {}), "members": _members(data.task)}}
    pipeline_config(dataset, spec, seed)  # the spec passes the pipeline's validation
    config = loop_config(spec, {}, tabular_info(data.task, data.features.in_features,
                         data.features.out_features))
    x, y = data.project["train"]
    model_spec, task = config["model"], config["task"]
    if case.xgboost_train:  # xgboost_loop_per_worker's boosting call, on the same arrays
        model_config = config_from_spec(model_spec, task=task)
        booster = xgboost.train(train_params(model_config), xgboost.DMatrix(x, label=y),
                                num_boost_round=model_config.n_estimators, verbose_eval=False)
        return as_estimator(booster, task), None
    if model_spec["kind"] == "ensemble":  # as fit_ensemble builds it
        model = build({"kind": "ensemble", "params": {**model_spec["params"], "training": config["training"]}},
                      task=task)
        model.fit(x, y)
        return model, model.weights_.tolist()
    return build(model_spec, task=task).fit(x, y), None  # as fit_estimator does


def run_case(case: Case, data: Data, seed: int, dataset: str) -> Row:
    t0 = time.perf_counter()
    model, weights = fit_project(case, data, seed, dataset)
    x_test, y_test = data.project["test"]
    out_features = data.features.out_features
    metrics = score(model, x_test, y_test, data.task, out_features)
    project_pred, _ = predict_arrays(model, x_test, data.task, out_features)
    t1 = time.perf_counter()

    direct_weights = weights if case.label.endswith("learned weights") else None
    estimator = _voting(data.task, weights=direct_weights) if direct_weights is not None else case.direct(data.task)
    xd_train, yd_train = data.direct["train"]
    xd_test, yd_test = data.direct["test"]
    estimator.fit(xd_train, yd_train)
    direct_pred = estimator.predict(xd_test)
    t2 = time.perf_counter()

    if data.task == "classification":
        project_labels = np.asarray(data.features.labels.decode(project_pred.tolist()))
        project_value = metrics["accuracy"]
        direct_value = accuracy_score(yd_test, direct_pred)
        assert abs(project_value - accuracy_score(yd_test, project_labels)) < 1e-12
        differing, max_abs = int(np.sum(project_labels != direct_pred)), 0.0
    else:
        project_value = metrics["r2"]
        direct_value = r2_score(yd_test, direct_pred)
        differing, max_abs = 0, float(np.max(np.abs(project_pred - direct_pred)))
    return Row(dataset, case, float(project_value), float(direct_value), differing, max_abs, data.n_test,
               (t1 - t0, t2 - t1), weights)


# ---------------------------------------------------------------------------- report


def _fmt_row(row: Row) -> list[object]:
    classify = row.task == "classification"
    if not row.case.exact:
        verdict = "n/a (stand-in)"
    else:
        verdict = "yes" if row.within else "**NO**"
    detail = f"{row.differing}/{row.n_test} rows" if classify else f"max abs {row.max_abs_diff:.2g}"
    return [
        row.dataset, row.case.label, "accuracy" if classify else "R²", f"{row.project:.4f}", f"{row.direct:.4f}",
        f"{row.diff:+.4f}", detail, verdict, f"{row.seconds[0]:.2f} / {row.seconds[1]:.2f}",
    ]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--datasets", nargs="+", choices=list(DATASETS), default=list(DATASETS))
    parser.add_argument("--seed", type=int, default=0, help="split seed")
    parser.add_argument("--no-write", action="store_true", help="print only; leave RESULTS.md alone")
    args = parser.parse_args()
    # Both sides run the same estimators with the same max_iter: a convergence warning is
    # the same on both sides and says nothing about parity.
    warnings.filterwarnings("ignore", category=ConvergenceWarning)

    started = time.perf_counter()
    rows: list[Row] = []
    sizes: dict[str, tuple[int, int, int]] = {}
    with tempfile.TemporaryDirectory(prefix="rayline-bench-parity-") as tmp:
        for dataset in args.datasets:
            data = load(dataset, args.seed, Path(tmp))
            sizes[dataset] = (len(data.direct["train"][1]), data.n_test, data.features.in_features)
            for case in cases():
                if data.task not in case.tasks:
                    continue
                print(f"{dataset}: {case.label} ...", flush=True)
                rows.append(run_case(case, data, args.seed, dataset))
    elapsed = time.perf_counter() - started

    compared = [r for r in rows if r.case.exact]
    outside = [r for r in compared if not r.within]
    identical = [r for r in compared if r.differing == 0 and (r.task == "classification" or r.max_abs_diff < 1e-3)]
    results = table(
        ["dataset", "kind", "metric", "project", "direct", "difference", "test predictions differing",
         "within tolerance", "fit+predict s (project / direct)"],
        [_fmt_row(r) for r in rows],
    )
    data_table = table(
        ["dataset", "task", "train rows", "test rows", "features", "tolerance"],
        [[d, DATASETS[d], *sizes[d][:2], sizes[d][2],
          f"|Δ accuracy| <= 1/{sizes[d][1]} (one test row)" if DATASETS[d] == "classification"
          else f"|Δ R²| <= {R2_TOLERANCE:g}"] for d in sizes],
    )
    weights = [f"{r.dataset}: " + ", ".join(f"{w:.2f}" for w in r.weights) for r in rows
               if r.case.label == "ensemble weighted" and r.weights]
    summary = (
        f"**{len(compared) - len(outside)} of {len(compared)} comparable rows within tolerance"
        f"{'' if not outside else ' (outside: ' + ', '.join(f'{r.dataset} {r.case.label} {r.diff:+.4f}' for r in outside) + ')'}"
        f"; {len(identical)} of them with identical test predictions.** "
        f"Criterion: the integration must not cost accuracy, so the project and the direct estimator may differ "
        f"by at most one test row's prediction (classification) or {R2_TOLERANCE:g} R² (regression): the only "
        "intended difference is the input precision (the project's silver features are float32, scaled by its "
        "own Preprocessor; the direct side is StandardScaler in float64), which can move a row that sits on a "
        f"decision boundary or a k-NN distance tie, nothing more. Total runtime {elapsed:.0f} s.\n"
    )
    notes = [
        f"Split: the project's seeded holdout, stratified for classification, train/val/test "
        f"{SPLIT_RATIOS['train']:g}/{SPLIT_RATIOS['val']:g}/{SPLIT_RATIOS['test']:g}, seed {args.seed}; both sides "
        "fit on the train rows and are scored on the test rows (val is unused). Preprocessing: mean impute "
        "(no missing values in these sets) and standard scaling, the PreprocessConfig defaults.",
        "Hyperparameters: the project's defaults for every kind, and the same values passed to the direct "
        "estimator; every random_state is 0 on both sides. Two project defaults differ from scikit-learn's own, "
        "and the direct side matches the project's: `random_forest` regression uses max_features \"sqrt\" "
        "(RandomForestRegressor's default is 1.0, all features) and `adaboost` regression uses a stump "
        "(AdaBoostRegressor's default base is a depth-3 tree).",
        "Ensembles: members logistic_regression (linear_regression for diabetes), random_forest and knn with "
        "their defaults; the direct side is VotingClassifier / VotingRegressor and StackingClassifier / "
        "StackingRegressor with the same members, the project's default meta-learner (LogisticRegression / "
        "LinearRegression) and the same folds (StratifiedKFold / KFold, 5, shuffled, seed 0).",
        "`ensemble weighted` learns member weights by greedy ensemble selection on out-of-fold predictions "
        "(Caruana et al.); scikit-learn has no such estimator, so its row compares with equal-weight voting and "
        "is not counted (\"stand-in\"); a difference there is the effect of the learned weights, not of the "
        "integration. The next row passes the weights the project learned to VotingClassifier / VotingRegressor, "
        "which checks the combining. Learned weights (logistic/linear, random_forest, knn): "
        + "; ".join(weights) + ".",
        "`xgboost` is built through the registry into XGBoost's scikit-learn wrapper; `xgboost (xgboost.train)` "
        "boosts with `train_params` of the same spec on a DMatrix, as the Ray Train worker does, and reads the "
        "booster back with `as_estimator`; both are compared with XGBClassifier / XGBRegressor.",
        "No Ray: Ray only decides where these fits run (a task, a trial, a worker); the fitting and scoring code "
        "is the same. The torch kinds (mlp, and linear/logistic regression with a gradient-descent solver) have "
        "no scikit-learn counterpart and are not listed.",
    ]
    body = (f"{summary}\n{data_table}\n\n{results}\n\n" + "".join(f"- {n}\n" for n in notes))
    print(body)
    if not args.no_write:
        write_section("accuracy_parity", "Accuracy parity with scikit-learn (accuracy_parity.py)", body)
        print("wrote benchmarks/RESULTS.md")
    return 1 if outside else 0


if __name__ == "__main__":
    raise SystemExit(main())
