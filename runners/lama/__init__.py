"""LaMa (Suvorov et al., 2021): a Fourier-convolution generator for large-mask inpainting.

Modules: `configs` (architectures as data), `architecture` (the generator, parameter names
as in the original checkpoints), `network` (the model contract: masked input in, blended
output out), `weights` (reading and writing every file format users have), `download`
(fetching the official file), `inpainter` (the `Inpainter` the runner serves).
"""
