"""The frameworks the scratch model is checked against. Everything here imports TensorFlow/Keras and PyTorch
lazily (only torch_model needs PyTorch to import).

    imports          import_tensorflow(), import_keras(): quiet imports with an install hint
    tolerances       how close scratch and framework must agree, in one place
    keras_model      build_keras_unet(): the source article's U-Net in Keras 3 (and zhixuhao's, by options)
    keras_structure  read_keras_unet(): any Keras U-Net of those shapes read by its wiring, whatever its names
    keras_transfer   to_keras(), from_keras(), config_from_keras(): weights across by structure, verified
    recording        the hook machinery every comparison shares (record, teacher-force, first difference)
    parity           compare() (per layer, teacher-forced gradients) and lockstep() (training side by side)
    keras_fit        fit_keras(): the Keras twin trained on the same batches as training.fit
    torch_model      TorchUNet: the same network as a PyTorch nn.Module (NCHW)
    torch_transfer   to_torch(), from_torch(): exact copies with the layout conversions, verified
    torch_parity     compare_torch(), lockstep_torch() (torch.optim SGD and Adam)

The names users need are re-exported by :mod:`unet_scratch.keras_ref` and :mod:`unet_scratch.torch_ref`.
"""
