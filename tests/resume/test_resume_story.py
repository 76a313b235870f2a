"""The seed's debugging story: train_svm fails with kernel 'polynomial', fix it, ``resume``."""

from __future__ import annotations

import importlib.util

import pytest
from resume_helpers import EXAMPLES, both, reused, run_meta, started

pytestmark = pytest.mark.skipif(
    importlib.util.find_spec("sklearn") is None,
    reason="scikit-learn is not installed (pip install -e '.[sklearn]'): the classifier example needs it",
)


def test_fix_train_svm_and_resume(flow, store_path, client):
    train = flow(EXAMPLES / "classifier_train.py")
    train.edit("svm.SVC(kernel='poly')", "svm.SVC(kernel='polynomial')")  # the seed's mistake
    first = train("run")
    assert first.returncode == 1, both(first)
    assert "Step 'train_svm' failed" in first.stderr and "polynomial" in first.stderr
    assert started(first.stdout) == {"start": 1, "train_knn": 1, "train_svm": 1}

    train.edit("svm.SVC(kernel='polynomial')", "svm.SVC(kernel='poly')")  # the fix
    out = train("resume")
    assert out.returncode == 0, both(out)
    assert reused(out.stdout) == {"start": 1, "train_knn": 1}
    assert started(out.stdout) == {"train_svm": 1, "choose_model": 1, "end": 1}
    assert "SVC(kernel='poly')" in out.stdout

    meta = run_meta(store_path, "ClassifierTrainFlow", 2)
    assert meta["status"] == "succeeded" and meta["resumed_from"] == 1
    run = client.Flow("ClassifierTrainFlow").latest_run
    assert run.id == "2" and run.successful and run.origin_pathspec == "ClassifierTrainFlow/1"
    assert type(run.data.model).__name__ in ("SVC", "KNeighborsClassifier")
    assert run["train_knn"].task.origin_pathspec.startswith("ClassifierTrainFlow/1/train_knn/")
    assert len(run["start"].task.data.train_data) == 142  # wine: 178 rows, 80% for training
