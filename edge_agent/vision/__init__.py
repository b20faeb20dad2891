"""The agent's video side: capture, motion gate, detection, counting, snapshots, clips, health.

Entry points (import the module you need; this package imports nothing on its own, so the
agent's config can load without OpenCV or PyAV):
- ``config.CameraConfig`` / ``config.DetectorConfig``: configuration models;
- ``detector.LiteRTDetector(cfg)``: one per agent, shared by its cameras;
- ``pipeline.CameraPipeline(camera, sink, detector, data_dir)``: one per camera;
- ``clips.cut_clip(ring_dir, start_ts, end_ts, out_path)``: an event clip from the ring;
- ``models_fetch.fetch_model(target_dir)``: ``dcor-agent models fetch``.
"""
