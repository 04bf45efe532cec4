"""``puhui train`` and ``puhui models …``: build, register, promote, retire, score and monitor
credit models from the command line (adapters over ``risk`` and its use cases)."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from puhui.cli_errors import fail as _fail
from puhui.domain.clock import business_date
from puhui.domain.errors import ValidationError
from puhui.risk.registry import ModelSummary

models_app = typer.Typer(
    help="Credit models: registry, promotion, scoring, monitoring.", no_args_is_help=True
)


def _console() -> Console:
    return Console()


def train(
    data: Annotated[Path, typer.Option(help="CSV file with a header row.")],
    target: Annotated[str, typer.Option(help="The column to predict (1 = bad).")],
    model: Annotated[str, typer.Option(help="scorecard or gbm.")] = "scorecard",
    bad_label: Annotated[str | None, typer.Option(help="Text label meaning bad.")] = None,
    good_label: Annotated[str | None, typer.Option(help="Text label meaning good.")] = None,
    out: Annotated[
        Path | None, typer.Option(help="Directory for model.json and the report.")
    ] = None,
    name: Annotated[str, typer.Option(help="Model name in the registry.")] = "sme-credit",
    seed: Annotated[int, typer.Option(help="Seed of the stratified split.")] = 42,
    test_size: Annotated[float, typer.Option(help="Share of rows held out.")] = 0.3,
    register: Annotated[bool, typer.Option(help="Register as a candidate.")] = True,
) -> None:
    """Train a scorecard or a GBM on any CSV with a binary target; print test AUC and KS,
    write a versioned artifact and a report (HTML and Markdown)."""
    from puhui.risk.frame import DataError
    from puhui.risk.report import ReportInputs, write_report
    from puhui.risk.training import feature_importance, read_training_csv, train_model

    console = _console()
    try:
        frame, y = read_training_csv(data, target, bad_label=bad_label, good_label=good_label)
        with console.status(f"fitting a {model} on {len(frame):,} rows"):
            run = train_model(
                frame,
                y,
                kind=model,
                name=name,
                seed=seed,
                test_size=test_size,
                data_source=str(data),
                data_path=data,
                target=target,
            )
    except DataError as exc:
        raise _fail(exc) from exc
    test = run.test_metrics
    console.print(
        f"test AUC [bold]{test['auc']:.4f}[/bold]  KS [bold]{test['ks']:.4f}[/bold]  "
        f"Gini {test['gini']:.4f}  Brier {test['brier']:.4f}  "
        f"({len(run.y_test):,} test rows, fitted in {run.artifact.metadata['fit_seconds']:.2f} s)"
    )
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    from puhui.settings import get_settings

    out_dir = out or (get_settings().var_dir / "models" / f"{name}-{model}-{stamp}")
    out_dir.mkdir(parents=True, exist_ok=True)
    run.artifact.save(out_dir / "model.json")
    est = run.estimator
    inputs = ReportInputs(
        title=f"{name} {model} ({stamp})",
        model_kind=model,
        metadata={
            k: v for k, v in run.artifact.metadata.items() if k not in ("profile", "selection")
        },
        y_train=run.y_train,
        pd_train=run.pd_train,
        score_train=run.score_train,
        y_test=run.y_test,
        pd_test=run.pd_test,
        score_test=run.score_test,
        binnings=[v.binning for v in est.model_.variables] if model == "scorecard" else (),  # type: ignore[union-attr]
        selection=getattr(est, "selection_", ()),
        points_table=est.model_.points_table() if model == "scorecard" else (),  # type: ignore[union-attr]
        feature_importance=feature_importance(run) if model == "gbm" else {},
    )
    html, md = write_report(inputs, out_dir)
    console.print(f"wrote {out_dir / 'model.json'}, {html.name} and {md.name} in {out_dir}")
    if register:
        from puhui.bootstrap import platform
        from puhui.risk.registry import register as register_model

        p = platform()
        try:
            summary = register_model(
                p.uow("cli"), run.artifact, name=name, created_by="puhui train"
            )
        except ValidationError as exc:
            raise _fail(exc) from exc
        finally:
            p.close()
        console.print(f"registered {summary.id} as {name} v{summary.version} (candidate)")


def _summaries_table(rows: list[ModelSummary]) -> Table:
    t = Table(
        "id", "name", "ver", "kind", "status", "test AUC", "data", "promoted by", "when / why"
    )
    for r in rows:
        when = r.promoted_at.isoformat(timespec="seconds") if r.promoted_at else ""
        t.add_row(
            r.id,
            r.name,
            str(r.version),
            r.kind,
            r.status,
            f"{r.test_auc:.4f}" if r.test_auc is not None else "",
            "synthetic" if r.synthetic else "",
            escape(r.promoted_by or ""),
            escape(" ".join(x for x in (when, r.status_reason or "") if x)),
        )
    return t


@models_app.command("list")
def models_list(
    name: Annotated[str | None, typer.Option(help="Only this model name.")] = None,
) -> None:
    """Registered models and their status (the bundled default serves until a champion is
    promoted)."""
    from puhui.bootstrap import platform
    from puhui.risk.registry import list_models

    p = platform()
    try:
        rows = list_models(p.uow("cli"), name)
    finally:
        p.close()
    console = _console()
    console.print(_summaries_table(list(rows)))
    if not any(r.status == "champion" for r in rows):
        console.print(
            "no champion promoted: decisions use the bundled default scorecard (synthetic data)"
        )


@models_app.command("promote")
def models_promote(
    model_id: Annotated[str, typer.Argument(help="Model id (mdl_…).")],
    role: Annotated[str, typer.Option(help="champion or challenger.")] = "champion",
    by: Annotated[str, typer.Option(help="Who promotes (recorded).")] = "",
    reason: Annotated[str, typer.Option(help="Why (recorded).")] = "",
) -> None:
    """Make a model the champion (decides) or the challenger (scored beside it)."""
    from puhui.bootstrap import platform
    from puhui.risk.registry import promote

    p = platform()
    try:
        s = promote(
            p.uow(by or "cli"), model_id, role=role, by=by, reason=reason, at=datetime.now(UTC)
        )
    except ValidationError as exc:
        raise _fail(exc) from exc
    finally:
        p.close()
    _console().print(f"{s.name} v{s.version} ({s.id}) is now {s.status}; promoted by {escape(by)}")


@models_app.command("retire")
def models_retire(
    model_id: Annotated[str, typer.Argument(help="Model id (mdl_…).")],
    by: Annotated[str, typer.Option(help="Who retires it (recorded).")] = "",
    reason: Annotated[str, typer.Option(help="Why (recorded).")] = "",
) -> None:
    """Take a candidate or the challenger out of service."""
    from puhui.bootstrap import platform
    from puhui.risk.registry import retire

    p = platform()
    try:
        s = retire(p.uow(by or "cli"), model_id, by=by, reason=reason)
    except ValidationError as exc:
        raise _fail(exc) from exc
    finally:
        p.close()
    _console().print(f"{s.name} v{s.version} ({s.id}) is {s.status}")


@models_app.command("score")
def models_score(
    data: Annotated[Path, typer.Option(help="CSV of applications, one per row.")],
    out: Annotated[Path, typer.Option(help="Where to write the scores (CSV).")],
    model: Annotated[
        str, typer.Option(help="Model id, a model.json path, or 'champion'.")
    ] = "champion",
    reasons: Annotated[int, typer.Option(help="Reason codes per row.")] = 3,
) -> None:
    """Batch-score a file: PD, score and the top reason codes for every row."""
    import pandas as pd

    from puhui.risk.artifact import ModelArtifact

    if Path(model).is_file():
        artifact = ModelArtifact.load(Path(model))
    else:
        from puhui.bootstrap import platform
        from puhui.risk.registry import load_artifact
        from puhui.risk.serving import LiveModels

        p = platform()
        try:
            if model == "champion":
                with p.sessions() as session:
                    live = LiveModels().current(session).champion.artifact
                if not isinstance(live, ModelArtifact):
                    raise _fail(
                        "the champion is a federated model: it scores only with its data "
                        "partner online, one application at a time"
                    )
                artifact = live
            else:
                artifact = load_artifact(p.uow("cli"), model)
        except ValidationError as exc:
            raise _fail(exc) from exc
        finally:
            p.close()
    try:
        frame = pd.read_csv(data, low_memory=False)
    except (OSError, pd.errors.ParserError, pd.errors.EmptyDataError) as exc:
        raise _fail(f"data: cannot read {data} ({exc})") from exc
    missing = [f for f in artifact.features if f not in frame.columns]
    if missing:
        raise _fail(f"data: the model needs columns that are not in the file: {', '.join(missing)}")
    frame = frame.copy()
    frame["pd"] = artifact.predict_pd(frame)
    frame["score"] = artifact.scores(frame)
    codes = []
    for rec in frame[artifact.features].to_dict("records"):
        codes.append("; ".join(c.feature for c in artifact.score_one(rec).reasons(reasons)))
    frame["reasons"] = codes
    frame.to_csv(out, index=False)
    _console().print(f"scored {len(frame):,} rows into {out}")


@models_app.command("monitor")
def models_monitor(
    days: Annotated[int, typer.Option(help="Decisions of the last N days.")] = 30,
    model: Annotated[str | None, typer.Option(help="Model id; default: the champion.")] = None,
    as_of: Annotated[
        str | None, typer.Option(help="Business date (YYYY-MM-DD) for outcomes.")
    ] = None,
    psi_alert: Annotated[float, typer.Option(help="Score PSI that raises an alert.")] = 0.25,
    csi_alert: Annotated[float, typer.Option(help="Feature CSI that raises an alert.")] = 0.25,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """Score and feature stability of recent applications against the training sample, and
    default rates by grade as outcomes arrive; exits 2 when an alert is raised."""
    from puhui.bootstrap import platform
    from puhui.risk.metrics import stability_label
    from puhui.risk.monitor import Thresholds
    from puhui.servicing.model_monitoring import monitor_model

    now = datetime.now(UTC)
    try:
        day = date.fromisoformat(as_of) if as_of else business_date(now)
    except ValueError as exc:
        raise _fail("as-of: expected a date as YYYY-MM-DD") from exc
    p = platform()
    try:
        report = monitor_model(
            p.uow("cli"),
            since=now - timedelta(days=days),
            until=now + timedelta(seconds=1),
            as_of=day,
            model_id=model,
            thresholds=Thresholds(score_psi=psi_alert, feature_csi=csi_alert),
        )
    except ValidationError as exc:
        raise _fail(exc) from exc
    finally:
        p.close()
    console = _console()
    if as_json:
        console.print_json(json.dumps(report.as_dict()))
    else:
        console.print(
            f"model {report.model}: {report.applications:,} applications in {days} days; "
            f"score PSI {report.score_psi:.3f} ({stability_label(report.score_psi)})"
        )
        t = Table("feature", "CSI", "reading")
        for name, value in sorted(report.feature_csi.items(), key=lambda kv: -kv[1]):
            t.add_row(name, f"{value:.3f}", stability_label(value))
        console.print(t)
        g = Table("grade", "loans", "bads", "bad rate")
        for row in report.grades:
            g.add_row(
                row.grade,
                str(row.loans),
                str(row.bads),
                f"{row.bad_rate:.1%}" if row.bad_rate is not None else "",
            )
        console.print(g)
        for alert in report.alerts:
            console.print(f"[red]ALERT[/red] {escape(alert)}")
    if report.alerts:
        raise typer.Exit(2)


@models_app.command("calibrate")
def models_calibrate(
    model_id: Annotated[str, typer.Argument(help="Model id (mdl_…) to recalibrate.")],
    data: Annotated[Path, typer.Option(help="Recent labelled applications (CSV).")],
    target: Annotated[str, typer.Option(help="The outcome column (1 = bad).")],
    method: Annotated[str, typer.Option(help="platt or isotonic.")] = "platt",
    bad_label: Annotated[str | None, typer.Option(help="Text label meaning bad.")] = None,
) -> None:
    """Refit a model's score → PD map on a recent sample; registers the result as a new
    candidate version (promote it to use it)."""
    from puhui.bootstrap import platform
    from puhui.risk import metrics
    from puhui.risk.calibration import fit_calibration
    from puhui.risk.frame import DataError
    from puhui.risk.registry import load_artifact, register
    from puhui.risk.training import read_training_csv

    p = platform()
    try:
        artifact = load_artifact(p.uow("cli"), model_id)
        frame, y = read_training_csv(data, target, bad_label=bad_label)
        missing = [f for f in artifact.features if f not in frame.columns]
        if missing:
            raise _fail(
                f"data: the model needs columns that are not in the file: {', '.join(missing)}"
            )
        scores = artifact.scores(frame)
        before = metrics.brier(y, artifact.predict_pd(frame))
        calibration = fit_calibration(scores, y, method)
        after = metrics.brier(y, calibration.pds(scores))
        new = artifact.recalibrated(calibration, source=f"{data} ({len(frame):,} rows)")
        summary = register(
            p.uow("cli"),
            new,
            name=str(artifact.metadata.get("name", "sme-credit")),
            created_by="puhui models calibrate",
        )
    except (ValidationError, DataError) as exc:
        raise _fail(exc) from exc
    finally:
        p.close()
    _console().print(
        f"{method} calibration on {len(frame):,} rows (bad rate {y.mean():.2%}): Brier "
        f"{before:.4f} → {after:.4f}; registered {summary.id} as v{summary.version} (candidate)"
    )
