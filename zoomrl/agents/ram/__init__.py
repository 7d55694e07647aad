"""RAM, the recurrent attention model (Mnih et al. 2014), and its landmark-regression variant.

* :mod:`.sensor`: the glimpse sensor (a pyramid of ``scales`` patches around a location, each resized to g x g);
* :mod:`.rewards`: the rewards (correct class; bell-shaped or within-radius reward of a normalised distance);
* :mod:`.network`: :class:`RamModel`, the glimpse network, the core RNN, the location, baseline and output heads,
  and the loss (supervised + REINFORCE on the location network only);
* :mod:`.baselines`: whole-image CNN and MLP baselines;
* :mod:`.agent`: :class:`RamAgent` / :class:`WholeImageAgent`, the :class:`zoomrl.agents.base.Agent` contract.
"""
