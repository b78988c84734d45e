"""The Azure Custom Vision provider of multicloud-cv: projects, tags, tagged images and regions, training,
publishing, export.

Entry points load :mod:`mcv_customvision.provider`, which imports the Custom Vision SDK only when work starts.
:mod:`mcv_customvision.emulator` is a loopback Custom Vision (training API v3.4-preview, prediction API v3.1) that
the real SDK clients talk to; it is how this provider is tested and demonstrated offline.
"""
