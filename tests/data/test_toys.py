"""2-D toys: deterministic draws, true densities that integrate to 1 and match their samples, and
the datamodule's splits, batches and split checks."""

import math

import pytest
import torch
from hydra.utils import instantiate
from omegaconf import OmegaConf

from flowgen.config import CONFIG_DIR
from flowgen.data.toys import TOYS, Checkerboard, EightGaussians, Rings, TwoMoons
from flowgen.data.vectors import ToyDataModule
from tests.conftest import compose_train

WITH_DENSITY = [name for name, toy in TOYS.items() if toy.has_density]


def draw(toy, n, seed=0):
    return toy.sample(n, torch.Generator().manual_seed(seed))


def grid(lo, hi, h):
    """Cell centres of a square grid ``[M, 2]`` float64 with cell side ``h``."""
    s = torch.arange(lo + h / 2, hi, h, dtype=torch.float64)
    return torch.cartesian_prod(s, s)


@pytest.mark.parametrize("name", sorted(TOYS))
def test_sample_shape_and_determinism(name):
    toy = TOYS[name]
    x = draw(toy, 1000)
    assert x.shape == (1000, 2) and x.dtype == torch.float32 and x.isfinite().all()
    assert torch.equal(x, draw(toy, 1000))
    assert not torch.equal(x, draw(toy, 1000, seed=1))
    assert draw(toy, 0).shape == (0, 2)


def test_densities_known_where_documented():
    assert set(WITH_DENSITY) == {"two_moons", "eight_gaussians", "checkerboard", "rings"}
    with pytest.raises(NotImplementedError, match="no known density"):
        TOYS["spirals"].log_prob(torch.zeros(1, 2))


@pytest.mark.parametrize("name", WITH_DENSITY)
def test_density_integrates_to_one(name):
    h = 0.05  # a divisor of 2: checkerboard's square edges fall on cell edges
    p = TOYS[name].log_prob(grid(-5, 5, h)).exp()  # 6 std past every mode
    assert (p.sum() * h * h).item() == pytest.approx(1, abs=1e-2)


@pytest.mark.parametrize("name", WITH_DENSITY)
def test_density_agrees_with_histogram_of_samples(name):
    """Chi-square of a 0.5-wide histogram of 100k samples against the density integrated over
    each bin (on an 8x8 sub-grid): about 1 per bin when sampler and density agree."""
    toy, n, width, sub = TOYS[name], 100_000, 0.5, 8
    x = draw(toy, n).double()
    edges = torch.arange(-5, 5 + 1e-9, width, dtype=torch.float64)
    counts = torch.histogramdd(x, bins=[edges, edges]).hist.flatten()
    fine = grid(-5, 5, width / sub)  # fine cell (i, j) lies in bin (i // sub, j // sub)
    p = toy.log_prob(fine).exp().view(len(edges) - 1, sub, len(edges) - 1, sub)
    expected = n * p.sum((1, 3)).flatten() * (width / sub) ** 2
    used = expected > 20
    assert expected[used].sum() > 0.99 * n
    chi2 = ((counts[used] - expected[used]) ** 2 / expected[used]).mean().item()
    assert chi2 < 1.5


def test_two_moons_density_matches_a_kernel_estimate():
    """A Gaussian KDE of bandwidth b on samples estimates the density convolved with N(0, b^2):
    two moons with the noise std sqrt(0.2^2 + b^2), exactly. An independent check of the
    quadrature and of the parameters it shares with the sampler."""
    b = 0.1
    samples, queries = draw(TwoMoons(), 200_000).double(), draw(TwoMoons(), 40, seed=7).double()
    kde = torch.logsumexp(-torch.cdist(queries, samples).square() / (2 * b * b), dim=1)
    kde = kde - math.log(len(samples) * 2 * math.pi * b * b)

    def gap(noise_std):  # |KDE - log p| of two moons with this final noise std, widened by b
        return (kde - TwoMoons(noise=math.hypot(noise_std, b) / 2).log_prob(queries)).abs()

    dense = TwoMoons().log_prob(queries) > -3.5  # elsewhere too few samples fall in the kernel
    assert gap(0.2)[dense].max().item() < 0.12 and gap(0.2).mean().item() < 0.04
    assert gap(0.24).mean().item() > 0.08  # and it can fail: a 20% wider noise is far outside


def test_two_moons_quadrature_is_converged():
    x = grid(-4, 4, 0.2)
    fine = TwoMoons(panels=64, order=32).log_prob(x)
    assert (TwoMoons().log_prob(x) - fine).abs().max().item() < 1e-6


def test_eight_gaussians_density_is_the_exact_mixture():
    toy = EightGaussians()
    x = grid(-4, 4, 0.5)
    cov = toy.std**2 * torch.eye(2, dtype=torch.float64)
    normal = torch.distributions.MultivariateNormal(toy.centres(), cov)
    exact = torch.logsumexp(normal.log_prob(x[:, None]), 1) - math.log(8)
    torch.testing.assert_close(toy.log_prob(x), exact)


def test_rings_closed_form_matches_quadrature_over_the_angle():
    toy, x = Rings(), grid(-4, 4, 0.3)
    angle = torch.linspace(0, 2 * math.pi, 2001, dtype=torch.float64)[:-1]
    unit = torch.stack([angle.cos(), angle.sin()], 1)
    centres = torch.cat([r * unit for r in toy.radii])  # every ring, uniform in angle
    sq = torch.cdist(x, centres).square()
    brute = (torch.logsumexp(-sq / (2 * toy.noise**2), 1) - math.log(len(centres))
             - math.log(2 * math.pi * toy.noise**2))
    near = brute > -30
    torch.testing.assert_close(toy.log_prob(x)[near], brute[near], atol=1e-6, rtol=0)


def test_checkerboard_entropy_is_log_area():
    toy = Checkerboard()
    value, stderr = toy.entropy_estimate(10_000)
    assert value == pytest.approx(math.log(32), abs=1e-9) and stderr == pytest.approx(0, abs=1e-9)
    assert toy.log_prob(torch.tensor([[1.0, 1.0], [-1.0, 1.0], [5.0, 0.0]])).tolist() == [
        -math.log(32), -math.inf, -math.inf]
    # closed squares: float32 rounds some samples onto an edge (1.99999999 -> 2.0)
    edges = torch.tensor([[2.0, 2.0], [2.0, 0.5], [-4.0, -4.0], [4.0, 4.0], [4.0, -4.0]])
    assert toy.log_prob(edges).isfinite().tolist() == [True, True, True, True, False]


@pytest.mark.parametrize("name, floor", [("eight_gaussians", 2.8319), ("two_moons", 2.3942)])
def test_entropy_estimates(name, floor):
    """The entropies measured with 10^6 samples, within 4 standard errors of 20k samples."""
    value, stderr = TOYS[name].entropy_estimate(20_000, seed=3)
    assert 0 < stderr < 0.02
    assert value == pytest.approx(floor, abs=4 * stderr + 0.002)


# --- the datamodule ---------------------------------------------------------------------------

def small(name="two_moons", **kwargs):
    sizes = dict(n_train=2048, n_val=300, n_test=500, batch_size=256)
    return ToyDataModule(name, **{**sizes, **kwargs})


def test_splits_are_reproducible_and_independent():
    dm, again, other = small(), small(), small(seed=1)
    x = {s: dm.points(s) for s in ("train", "val", "test")}
    assert [len(v) for v in x.values()] == [2048, 300, 500]
    for split, points in x.items():
        assert torch.equal(points, again.points(split))
        assert not torch.equal(points[:300], other.points(split)[:300])
    flat = torch.cat(list(x.values()))
    assert len(torch.unique(flat, dim=0)) == len(flat)  # no point shared between splits
    assert torch.equal(dm.points("train", 10), x["train"][:10])


def test_batches_are_data_and_label_tuples():
    dm = small()
    dm.setup("fit")
    x, y = next(iter(dm.train_dataloader()))
    assert x.shape == (256, 2) and x.dtype == torch.float32
    assert y.shape == (256,) and y.dtype == torch.int64 and not y.any()
    assert len(dm.train_dataloader()) == 8  # drop_last: whole batches
    assert sum(len(b[0]) for b in dm.val_dataloader()) == 300
    assert torch.equal(torch.cat([b[0] for b in dm.test_dataloader()]), dm.points("test"))
    assert dm.event_shape == (2,)


def test_training_order_resumes_exactly():
    dm = small()
    dm.setup("fit")
    loader = dm.train_dataloader()
    batches = iter(loader)
    seen = [next(batches)[0] for _ in range(3)]
    rest = [b[0] for b in batches]
    state = loader.state_dict()
    assert state["batches"] == 8
    fresh = small()
    fresh.setup("fit")
    again = fresh.train_dataloader()
    again.load_state_dict({**state, "batches": 3})
    assert all(torch.equal(a, b[0]) for a, b in zip(rest, again, strict=True))
    assert not torch.equal(seen[0], rest[0])


def test_entropy_over_the_test_split():
    dm = small()
    value, stderr = dm.entropy_estimate()
    assert value == dm.entropy()
    assert value == pytest.approx(-TOYS["two_moons"].log_prob(dm.points("test")).mean().item())
    assert small("checkerboard").entropy() == pytest.approx(math.log(32))
    assert small("spirals").entropy() is None and small("pinwheel").entropy_estimate() is None


def test_check_splits_names_the_fix():
    small().check_splits(num_replicas=8)
    with pytest.raises(ValueError, match=r"raise data.n_train to at least 2560 or lower "
                                         r"data.batch_size to 204"):
        small().check_splits(num_replicas=10)
    with pytest.raises(ValueError, match=r"raise data.n_val to at least 2"):
        small(n_val=1).check_splits(num_replicas=2)
    with pytest.raises(ValueError, match=r"raise data.n_test to at least 1"):
        small(n_test=0).check_splits()
    with pytest.raises(ValueError, match="unknown toy data 'moons'; choose one of two_moons"):
        ToyDataModule("moons")


def test_data_configs_instantiate(tmp_path):
    """two_moons through the real train.yaml, every toy config on its own (a compose is slow)."""
    configs = {name: OmegaConf.load(CONFIG_DIR / "data" / f"{name}.yaml") for name in TOYS}
    for cfg in configs.values():  # each picks task=density in its defaults list: not an argument
        assert cfg.pop("defaults") == [{"override /task@_global_.task": "density"}]
    configs["two_moons"] = compose_train(["data=two_moons"], tmp_path).data
    for name, cfg in configs.items():
        dm = instantiate(cfg)
        assert isinstance(dm, ToyDataModule) and dm.name == name and dm.event_shape == (2,)
        assert dm.sizes == {"n_train": 50_000, "n_val": 5_000, "n_test": 20_000}
