"""Per-channel RGB statistics that video pipelines normalise with (frames in [0, 1])."""

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
# torchvision's Kinetics video statistics, used by XDC / VMZ (spec §1.2) instead of ImageNet's.
KINETICS_MEAN = (0.43216, 0.394666, 0.37645)
KINETICS_STD = (0.22803, 0.22145, 0.216989)
