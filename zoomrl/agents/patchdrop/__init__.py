"""PatchDrop (Uzkent and Ermon, CVPR 2020): a policy that chooses which of 16 patches to see at high resolution.

:mod:`.patches` (NumPy: masks, reward, mixing, advantage), :mod:`.resnet` (CIFAR ResNets), :mod:`.policy` (the
REINFORCE policy network), :mod:`.agent` (the agent and its stages).
"""
