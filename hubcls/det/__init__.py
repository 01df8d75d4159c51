"""hubcls.det"""
