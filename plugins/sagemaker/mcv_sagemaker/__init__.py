"""The SageMaker provider of multicloud-cv: the built-in image-classification and object-detection algorithms.

Entry points load :mod:`mcv_sagemaker.provider`, which imports boto3 only when work starts.
:mod:`mcv_sagemaker.emulator` is a loopback SageMaker (control plane and runtime) that the real
boto3 client talks to; it is how this provider is tested and demonstrated offline.
"""
