"""Tabular data loaders (qloom.data.tabular) on small files in each real format."""

from __future__ import annotations

import numpy as np
import pytest

from qloom.data.tabular import load_jets, load_sklearn, load_unsw_nb15
from qloom.errors import DatasetError

JET_FEATURES = ["zlogz", "c1_b0_mmdt", "c1_b1_mmdt", "c1_b2_mmdt", "c2_b1_mmdt", "c2_b2_mmdt",
                "d2_b1_mmdt", "d2_b2_mmdt", "d2_a1_b1_mmdt", "d2_a1_b2_mmdt", "m2_b1_mmdt",
                "m2_b2_mmdt", "n2_b1_mmdt", "n2_b2_mmdt", "mass_mmdt", "multiplicity"]  # fmt: skip
UNSW_COLUMNS = (
    "id,dur,proto,service,state,spkts,dpkts,sbytes,dbytes,rate,sttl,dttl,sload,dload,sloss,"
    "dloss,sinpkt,dinpkt,sjit,djit,swin,stcpb,dtcpb,dwin,tcprtt,synack,ackdat,smean,dmean,"
    "trans_depth,response_body_len,ct_srv_src,ct_state_ttl,ct_dst_ltm,ct_src_dport_ltm,"
    "ct_dst_sport_ltm,ct_dst_src_ltm,is_ftp_login,ct_ftp_cmd,ct_flw_http_mthd,ct_src_ltm,"
    "ct_srv_dst,is_sm_ips_ports,attack_cat,label"
).split(",")


def _jets(n=40, seed=0):
    rng = np.random.default_rng(seed)
    return rng.normal(size=(n, 16)).astype(np.float32), rng.integers(0, 5, n)


def _row(features, c) -> str:
    return ",".join(f"{v:.7g}" for v in features) + f",{'gqtwz'[c]}"


def test_jets_arff_as_openml_writes_it(tmp_path):
    x, y = _jets()
    lines = ["% hls4ml_lhc_jets_hlf (OpenML 42468)", "@RELATION hls4ml_lhc_jets_hlf", ""]
    lines += [f"@ATTRIBUTE {n} NUMERIC" for n in JET_FEATURES]
    lines += ["@ATTRIBUTE class {g,q,t,w,z}", "", "@DATA"]
    lines += [_row(r, c) for r, c in zip(x, y, strict=True)]
    (tmp_path / "jets.arff").write_text("\n".join(lines) + "\n")
    t = load_jets(tmp_path / "jets.arff")
    assert t.x.shape == (40, 16) and np.allclose(t.x, x, rtol=1e-6) and (t.y == y).all()
    assert t.classes == ("g", "q", "t", "w", "z")


def test_jets_csv_and_errors(tmp_path):
    x, y = _jets(10)
    rows = [",".join([*JET_FEATURES, "class"])]
    rows += [_row(r, c) for r, c in zip(x, y, strict=True)]
    (tmp_path / "jets.csv").write_text("\n".join(rows) + "\n")
    t = load_jets(tmp_path / "jets.csv")
    assert np.allclose(t.x, x, rtol=1e-6) and (t.y == y).all()
    head, first = rows[0], rows[1].rsplit(",", 1)[0]
    (tmp_path / "bad.csv").write_text(f"{head}\n{first},h\n")
    with pytest.raises(DatasetError, match="unknown class 'h'"):
        load_jets(tmp_path / "bad.csv")
    (tmp_path / "short.csv").write_text("a,class\n1,g\n")
    with pytest.raises(DatasetError, match="1 features; the jet data set has 16"):
        load_jets(tmp_path / "short.csv")


def test_unsw_nb15_logicnets_npz(tmp_path):
    rng = np.random.default_rng(1)
    train, test = (rng.integers(0, 2, (n, 594)).astype(np.uint8) for n in (30, 12))
    np.savez(tmp_path / "unsw_nb15_binarized.npz", train=train, test=test)
    t = load_unsw_nb15(tmp_path / "unsw_nb15_binarized.npz", "train")
    assert t.x.shape == (30, 593) and (t.x == train[:, :-1]).all() and (t.y == train[:, -1]).all()
    assert load_unsw_nb15(tmp_path / "unsw_nb15_binarized.npz").x.shape == (12, 593)
    np.savez(tmp_path / "wrong.npz", train=train[:, :100], test=test)
    with pytest.raises(DatasetError, match="593 binary features and the label"):
        load_unsw_nb15(tmp_path / "wrong.npz", "train")


def test_unsw_nb15_standard_csv(tmp_path):
    rng = np.random.default_rng(2)
    lines = [",".join(UNSW_COLUMNS)]
    for i in range(20):
        vals = [str(i + 1), f"{rng.random():.6f}", "tcp", "-", "FIN"]
        vals += [str(int(v)) for v in rng.integers(0, 100, len(UNSW_COLUMNS) - 7)]
        vals += ["Normal" if i % 2 else "Exploits", str(1 - i % 2)]
        lines.append(",".join(vals))
    (tmp_path / "UNSW_NB15_testing-set.csv").write_text("\n".join(lines) + "\n")
    t = load_unsw_nb15(tmp_path / "UNSW_NB15_testing-set.csv")
    assert t.x.shape == (20, 39) and list(t.y[:4]) == [1, 0, 1, 0]
    (tmp_path / "ragged.csv").write_text(lines[0] + "\n1,2\n")
    with pytest.raises(DatasetError, match="line 2 has 2 fields, the header 45"):
        load_unsw_nb15(tmp_path / "ragged.csv")


@pytest.mark.parametrize(("name", "shape", "classes"),
                         [("digits", (1797, 64), 10), ("breast-cancer", (569, 30), 2),
                          ("wine", (178, 13), 3)])  # fmt: skip
def test_bundled_sklearn_sets(name, shape, classes):
    t = load_sklearn(name)
    assert t.x.shape == shape and len(t.classes) == classes and t.y.max() == classes - 1
