"""The colour core: CIE Lab in torch, the 313 ab bins, guided chroma upsampling, the fused renderer.

Pure maths on tensors and arrays, and the measures of colour against the truth; it imports nothing else of the package.
"""
