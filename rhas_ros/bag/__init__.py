"""rhas_bag: rhas_node's pipeline over a recording (rhas_ros.bag.cli), frame by frame, into a bag.

    cli.py     the command line, parameters read as the node reads them, progress, summary, signals
    replay.py  the run: the node's FrameGate, TextGate, persons matching and Session over the bag
    output.py  the output bag (rosbags writer, rclpy serialisation, embedded definitions)

Reading bags (topics, stamp order, errors) is hopadiff.bags, shared with hopadiff-extract.
"""
