"""`dp-sgd`: the `paper` recipe trained with differential privacy (opacus): a defense to measure.

Per-sample gradients clipped to max_grad_norm, Gaussian noise calibrated to reach (epsilon, delta)
after the given epochs; weight decay stays in the optimiser (data-independent). The epsilon reached
is recorded on the victim's row. Needs the optional extra: pip install 'recon-harness[dp]'.
"""

from __future__ import annotations

import time
import warnings

import torch
from pydantic import Field

from harness.errors import HarnessError
from harness.heads.losses import data_loss, output_dim, targets_for
from harness.heads.mlp import MLPHead
from harness.specs.task import HeadRecipe
from harness.victims.trainers.base import Fitted, Trainer, TrainerParams, report_of


class DPParams(TrainerParams):
    epsilon: float = Field(8.0, gt=0, description="target epsilon")
    delta: float = Field(1e-5, gt=0, lt=1, description="target delta")
    max_grad_norm: float = Field(1.0, gt=0, description="per-sample gradient clip")
    epochs: int = Field(300, ge=1, description="passes over the training rows")
    batch_size: int | None = Field(None, ge=1, description="expected batch size (Poisson sampling); default: all rows")
    lr: float | None = Field(None, gt=0, description="Adam step size; default: the task's head.lr")


class DPSGD(Trainer):
    """The paper recipe under DP-SGD (opacus): clipped, noised per-sample gradients at a target (epsilon, delta)."""

    name = "dp-sgd"
    Params = DPParams
    uses_head_recipe = True

    def check(self) -> None:
        try:
            import opacus  # noqa: F401
        except ImportError:
            raise HarnessError("victim.trainer", self.name, "needs opacus: pip install 'recon-harness[dp]'") from None

    def fit(self, x, labels, num_classes, head: HeadRecipe, seed, progress, val) -> Fitted:
        self.check()
        from opacus import PrivacyEngine
        from torch.utils.data import DataLoader, TensorDataset

        p: DPParams = self.params
        t0 = time.perf_counter()
        torch.manual_seed(seed)
        model = MLPHead([x.shape[1], *head.widths, output_dim(head.loss, num_classes)], bias=head.bias).scale_init_(head.init_scale)
        target = targets_for(head.loss, labels, num_classes)
        loader = DataLoader(TensorDataset(x, target), batch_size=p.batch_size or len(x),
                            generator=torch.Generator().manual_seed(seed))
        opt = torch.optim.Adam(model.parameters(), lr=p.lr or head.lr, weight_decay=head.weight_decay)
        with warnings.catch_warnings():  # opacus warns that secure_mode is off: seeded noise, to reproduce a victim
            warnings.simplefilter("ignore")
            engine = PrivacyEngine(accountant="rdp", secure_mode=False)
            private, opt, loader = engine.make_private_with_epsilon(
                module=model, optimizer=opt, data_loader=loader, target_epsilon=p.epsilon, target_delta=p.delta,
                epochs=p.epochs, max_grad_norm=p.max_grad_norm, noise_generator=torch.Generator().manual_seed(seed + 7),
            )
            for _ in range(p.epochs):
                for xb, tb in loader:
                    if len(xb) == 0:
                        continue
                    opt.zero_grad(set_to_none=True)
                    data_loss(head.loss, private(xb), tb).backward()
                    opt.step()
            eps = float(engine.get_epsilon(p.delta))
        # a plain head with the trained weights (opacus leaves hooks and per-sample gradients on its module)
        trained = MLPHead(model.dims, bias=model.bias_mode)
        trained.load_state_dict({k: v.detach().clone() for k, v in private._module.state_dict().items()})
        model = trained

        report = report_of(model, head.loss, x, labels, num_classes, None, p.epochs, "epochs", t0, head.weight_decay)
        return Fitted(model, report, {"epsilon": eps, "delta": p.delta, "noise_multiplier": float(opt.noise_multiplier)})
