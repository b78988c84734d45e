"""The Google Vertex AI provider of multicloud-cv: custom training on CPU, GPU and TPU scale tiers, AutoML image
training, endpoints, batch prediction.

Entry points load :mod:`mcv_vertex.provider`, which imports google-cloud-aiplatform only when work starts.
:mod:`mcv_vertex.task` is the training program a CustomJob runs (our local engine, shipped as a Python package to
a prebuilt training container); :mod:`mcv_vertex.serving` the prediction server of the custom route's serving
container. :mod:`mcv_vertex.emulator` is a loopback Vertex AI (v1 REST) that the real client talks to.
"""
