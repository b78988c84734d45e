"""The Rekognition Custom Labels provider of multicloud-cv: projects, datasets, model versions, start/stop, detect.

Entry points load :mod:`mcv_rekognition.provider`, which imports boto3 only when work starts.
:mod:`mcv_rekognition.emulator` is a loopback Rekognition (Custom Labels operations) that the real boto3 client
talks to; it is how this provider is tested and demonstrated offline.
"""
