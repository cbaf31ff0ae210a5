"""Video in, PoseFrame out: capture, pose backends, filters, kinematics kernels."""
