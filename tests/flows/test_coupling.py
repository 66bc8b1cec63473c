"""The one :class:`Coupling` beyond the shared contract: partitions, the conditioner's context,
vector couplings, and the guard of mask partitions against overflow in discarded entries."""

from __future__ import annotations

import pytest
import torch

from flowgen.flows import (
    MLP,
    AffineBijection,
    AffineCoupling,
    Alternating,
    BinaryMask,
    Checkerboard,
    Coupling,
    CouplingNet,
    Halves,
    ResNet,
    TanhAffineBijection,
    mlp_coupling,
)
from tests.conftest import perturb_


@pytest.mark.parametrize("partition,shape", [(Halves(0), (5, 2, 2)), (Halves(1), (5,)),
                                             (Alternating(1), (2, 3, 1)),
                                             (Checkerboard(0), (2, 3, 3)),
                                             (BinaryMask(torch.tensor([1, 0, 0, 1])), (4,))])
def test_partitions_keep_the_kept_entries_and_count_only_the_transformed(partition, shape):
    x = torch.randn(2, *shape)
    x_a, x_b = partition.split(x)
    y = partition.merge(x_a, x_b + 100.0).view(x.shape)
    changed = y != x
    n_changed = partition.sum_transformed(torch.ones_like(x_b))
    assert torch.equal(n_changed, changed.flatten(1).sum(1).to(n_changed.dtype))
    kept, transformed = partition.sizes(shape[0])
    if not isinstance(partition, Alternating):  # Alternating counts flattened entries
        assert x_b.shape[1] == transformed and x_a.shape[1] == kept
    assert 0 < n_changed[0] < x[0].numel()


def test_vector_affine_coupling_starts_as_the_identity_and_learns():
    layer = mlp_coupling(2, parity=1, hidden_features=64, hidden_layers=2)
    assert layer.event_kinds == ("vector",)
    x = torch.randn(256, 2)
    y, logdet = layer(x)
    assert torch.equal(y, x) and torch.equal(logdet, torch.zeros(256))
    # one step of maximum likelihood on a stretched Gaussian moves it off the identity
    data = x * torch.tensor([1.0, 3.0]) + torch.tensor([0.0, 2.0]) * x[:, :1]
    optimiser = torch.optim.Adam(layer.parameters(), lr=1e-2)
    for _ in range(20):
        z, ld = layer(data)
        loss = (0.5 * z.pow(2).sum(1) - ld).mean()
        optimiser.zero_grad()
        loss.backward()
        optimiser.step()
    z, ld = layer(data)
    assert (0.5 * z.pow(2).sum(1) - ld).mean() < 0.5 * data.pow(2).sum(1).mean() - 0.1


def test_coupling_build_sizes_the_network_from_the_partition():
    layer = Coupling.build(Checkerboard(1), 3, lambda i, o, k: ResNet(i, o, 8, 1, k),
                           TanhAffineBijection, context_features=2)
    assert layer.net.inp.in_channels == 3 + 1 + 2  # channels, the mask, the context
    assert layer.net.out.out_channels == 2 * 3 and layer.bijection.scale.shape == (3,)
    layer(torch.randn(2, 3, 4, 4), torch.randn(2, 2))


@pytest.mark.parametrize("net", [lambda k: CouplingNet(2, 4, 8, k),
                                 lambda k: ResNet(2, 4, 8, 1, k)])
def test_image_conditioners_broadcast_the_context_over_the_image(net):
    layer = perturb_(Coupling(Halves(0), net(3), AffineBijection(), context_features=3))
    x, context = torch.randn(2, 4, 3, 3), torch.randn(2, 3)
    y, _ = layer(x, context)
    y_other, _ = layer(x, context.flip(0))
    assert not torch.allclose(y, y_other)
    # the same context for both samples: each sample's output depends only on its own context
    y_same, _ = layer(x, context[:1].expand(2, 3))
    torch.testing.assert_close(y_same[0], y[0])


def test_labels_are_embedded_first_and_uncontexted_couplings_ignore_cond():
    layer = perturb_(mlp_coupling(4, hidden_features=8, context_features=3, num_classes=5))
    x = torch.randn(3, 4)
    labels = torch.tensor([0, 4, 2])
    y, _ = layer(x, labels)
    torch.testing.assert_close(y, layer(x, layer.embedding(labels))[0], rtol=0, atol=0)
    with pytest.raises(ValueError, match="class labels must lie in 0..4"):
        layer(x, torch.tensor([0, 5, 1]))
    with pytest.raises(ValueError, match="is conditioned"):
        layer(x)
    plain = perturb_(AffineCoupling(4, hidden_channels=8))
    image = torch.randn(3, 4, 2, 2)
    assert torch.equal(plain(image, labels)[0], plain(image)[0])
    with pytest.raises(ValueError, match="no label embedding"):
        perturb_(mlp_coupling(4, context_features=2))(x, labels)
    with pytest.raises(ValueError, match=r"float context \[B, 2\]"):
        mlp_coupling(4, context_features=2)(x, torch.randn(3, 5))


def test_mask_partitions_do_not_leak_an_overflow_of_a_discarded_entry():
    """The bijection runs on every entry of a masked input; where it overflows on a kept entry
    (a net output nobody uses), the output and the log-determinant stay finite."""
    class Huge(torch.nn.Module):  # raw log-scale -1e4: 1/s overflows to inf everywhere
        def forward(self, x):
            return torch.cat([torch.zeros_like(x), torch.full_like(x, -1e4)], 1)

    mask = torch.tensor([1.0, 0.0, 1.0, 0.0])
    layer = Coupling(BinaryMask(mask), Huge(), AffineBijection("sigmoid"))
    y = torch.randn(2, 4)
    x, logdet = layer.inverse(y)
    assert torch.equal(x[:, mask == 1], y[:, mask == 1])
    assert torch.isinf(x[:, mask == 0]).all()  # the transformed entries do overflow
    assert torch.isfinite(logdet).all()


def test_mlp_conditioner_concatenates_the_context():
    net = perturb_(MLP(2, 4, 8, 1, context_features=3))
    assert net[0].in_features == 5
    with pytest.raises(ValueError, match="built without a context"):
        MLP(2, 4, 8, 1)(torch.randn(2, 2), torch.randn(2, 3))
