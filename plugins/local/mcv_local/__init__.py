"""The local provider of multicloud-cv: PyTorch training, ONNX export, onnxruntime serving on 127.0.0.1.

Importing this package (what ``mcv providers`` does) imports neither torch nor onnxruntime;
the training engine and the server run in their own processes.
"""

__version__ = "0.1.0"
