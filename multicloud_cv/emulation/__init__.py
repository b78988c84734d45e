"""The kit the cloud emulators share: testing-grade code for loopback fakes of AWS-style services.

This package is for the emulators that the cloud plugins ship (``mcv_sagemaker.emulator``,
``mcv_rekognition.emulator``) and for nothing else: it serves tests and ``mcv emulate``, never a real
workload. It holds what every AWS JSON 1.1 emulator needs, each piece proven by the SageMaker emulator
first and moved here when the Rekognition emulator needed the same:

* :mod:`.protocol` - the wire protocol read from botocore's own service models: request validation
  (botocore's :class:`~botocore.validate.ParamValidator` plus the constraints botocore leaves to the
  service), JSON 1.1 encoding of answers (epoch-second timestamps, base64 blobs), :class:`~.protocol.ApiError`.
* :mod:`.service` - :class:`~.service.JsonService`: one JSON 1.1 call from ``X-Amz-Target`` to answer
  (record, faults, validation, ``_op_<Operation>``, output check), the call log and the runner threads.
* :mod:`.faults` - injected faults (throttling, 5xx, after-effect errors, delays, slow resources, failed
  jobs) and the per-service error catalogue that words them.
* :mod:`.server` - a Starlette app served by uvicorn in a thread on 127.0.0.1, and the ``/_emulator``
  administration routes.
* :mod:`.lifecycle` - :class:`~.lifecycle.Lifecycle`, the base of every emulator object (the AWS ones, Vertex
  AI's and Custom Vision's): loopback-only options, state folder, start and stop in order, ``with``,
  ``mcv emulate``'s ``serve_forever``, fault injection.
* :mod:`.aws` - moto's server beside the emulated service, the S3 facade the emulated service reads and
  writes through, and :class:`~.aws.AwsEmulator`: start, stop, environment, clients, buckets, faults.
* :mod:`.training` and :mod:`.serving` - real training of a small model with the local provider's engine
  (``small_cnn`` classifier, FCOS detector), ONNX export, scoring, and ONNX inference on image bytes.

Importing any module here is light: botocore, starlette, uvicorn, moto, boto3, numpy, torch and
onnxruntime are imported inside the functions that need them. The training and serving helpers need
the local provider's distribution (``multicloud-cv-local``), which every emulator extra requires.
"""
